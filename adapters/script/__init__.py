"""Built-in ``script`` adapter: a training job runs any user command.

Config: ``command`` (a template such as ``python train.py --lr {lr}``), ``cwd``, ``timeout_s``,
and one extra key for every ``{placeholder}`` the command uses (an extra key the command does
not use is rejected as unknown). The command logs through labdeck's tracking API, or prints
JSON-object lines with a ``step`` and numeric metrics, which are ingested; other output goes to
the run's log.
"""

from __future__ import annotations

import json
import math
import os
import shlex
import signal
import string
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from adapters.base import BaseAdapter, ConfigError, ConfigSchema, Field, Reporter

_BASE_FIELDS = (
    Field("command", "str", "", "shell command; {name} placeholders take config values",
          required=True),
    Field("cwd", "str", "", "working directory (default: where the experiment was created)"),
    Field("timeout_s", "float", 0.0, "kill the command after this many seconds (0: never)",
          min=0.0),
)
_RESERVED = {f.name for f in _BASE_FIELDS}


def _template(command: str) -> list[tuple[str, str | None]]:
    """(literal text, placeholder name or None) pairs. Only plain ``{name}`` placeholders are
    allowed: a format spec (``{x:>99999999999}`` would ask for gigabytes), a conversion, an
    index or an attribute is refused, so rendering is plain substitution."""
    parts = []
    try:
        for literal, name, spec, conversion in string.Formatter().parse(command):
            if name is not None and (not name.isidentifier() or spec or conversion):
                shown = "{" + name + (f"!{conversion}" if conversion else "") + (
                    f":{spec}" if spec else "") + "}"
                if len(shown) > 40:
                    shown = shown[:37] + "..."
                raise ConfigError({"command": f"placeholder {shown} is not allowed: use a plain"
                                   " {name} (a letter or _, then letters, digits or _; no format"
                                   " spec, conversion, index or attribute); {{ and }} are"
                                   " literal braces"})
            parts.append((literal, name))
    except ValueError as exc:
        raise ConfigError({"command": f"bad template: {exc}"}) from None
    return parts


def placeholders(command: str) -> list[str]:
    return [name for _, name in _template(command) if name]


def _parse_literal(text: str) -> Any:
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if isinstance(value, (int, float, bool, str)) else text


class ScriptAdapter(BaseAdapter):
    name = "script"
    description = "Run your own training command; it logs via labdeck.tracking or JSON lines."
    capabilities = frozenset({"train"})

    @classmethod
    def config_schema(cls) -> ConfigSchema:
        return ConfigSchema(_BASE_FIELDS)

    @classmethod
    def validate_config(cls, config: Mapping[str, Any] | None) -> dict[str, Any]:
        config = dict(config or {})
        extra = {k: config.pop(k) for k in list(config) if k not in _RESERVED}
        errors: dict[str, str] = {}
        try:
            out = cls.config_schema().validate(config)
        except ConfigError as exc:
            errors.update(exc.errors)
            out = {}
        command = config.get("command") or ""
        try:
            used = set(placeholders(command)) if isinstance(command, str) else set()
        except ConfigError as exc:
            errors.update(exc.errors)
            used = set()
        for key, value in extra.items():
            if key not in used:
                errors[key] = "unknown key (not a {placeholder} of command)"
            elif not isinstance(value, (int, float, str)):  # bool is an int
                errors[key] = f"expected a number, string or bool, got {value!r}"
            elif isinstance(value, float) and not math.isfinite(value):
                errors[key] = f"must be a finite number, got {value!r}"
        for name in used - set(extra) - _RESERVED:
            errors[name] = "used by command but has no value"
        if errors:
            raise ConfigError(errors)
        if not out["cwd"]:
            out["cwd"] = os.getcwd()
        out.update(extra)
        return out

    @classmethod
    def parse_assignments(cls, items: Sequence[str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for item in items:
            if "=" not in item:
                raise ConfigError({item: "expected key=value"})
            key, _, text = item.partition("=")
            key = key.strip()
            if key in _RESERVED:
                try:
                    out[key] = cls.config_schema().field(key).parse(text)
                except ValueError as exc:
                    raise ConfigError({key: str(exc)}) from None
            else:
                out[key] = _parse_literal(text)
        return out

    def render_command(self, config: Mapping[str, Any]) -> str:
        values = {k: shlex.quote(str(v)) for k, v in config.items() if k not in _RESERVED}
        return "".join(literal + (values[name] if name else "")
                       for literal, name in _template(config["command"]))

    def train(self, config: dict[str, Any], reporter: Reporter,
              resume_from: Path | None = None) -> dict[str, Any]:
        command = self.render_command(config)
        env = dict(os.environ)
        env["PYTHONUNBUFFERED"] = "1"
        # `python` in the command is the interpreter labdeck runs on
        env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
        reporter.info(f"$ {command}")
        proc = subprocess.Popen(
            ["/bin/sh", "-c", command], cwd=config["cwd"] or None, env=env,
            stdout=subprocess.PIPE, stderr=None, text=True, bufsize=1)
        ingested = 0
        lines_done = threading.Event()

        def pump() -> None:
            nonlocal ingested
            assert proc.stdout is not None
            for line in proc.stdout:
                parsed = _metric_line(line)
                if parsed is None:
                    sys.stdout.write(line)
                    sys.stdout.flush()
                elif not reporter.should_stop():  # after a stop request, nothing more counts
                    step, metrics, epoch = parsed
                    if metrics:
                        reporter.log(metrics, step=step, epoch=epoch)
                        ingested += len(metrics)
            lines_done.set()

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        deadline = time.monotonic() + config["timeout_s"] if config["timeout_s"] else None
        stopped = timed_out = False
        while proc.poll() is None:
            if reporter.should_stop():
                stopped = True
                break
            if deadline and time.monotonic() > deadline:
                timed_out = True
                break
            time.sleep(0.05)
        if stopped or timed_out:
            _terminate(proc)
        proc.wait()
        lines_done.wait(timeout=5)
        if timed_out:
            raise RuntimeError(f"command timed out after {config['timeout_s']} s")
        if not stopped and proc.returncode != 0:
            raise RuntimeError(f"command exited with code {proc.returncode}")
        return {"exit_code": proc.returncode, "ingested_points": ingested, "stopped": stopped}


def _terminate(proc: subprocess.Popen, grace: float = 5.0) -> None:
    try:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
    except ProcessLookupError:
        pass


def _metric_line(line: str) -> tuple[int | None, dict[str, float], float | None] | None:
    text = line.strip()
    if not (text.startswith("{") and text.endswith("}")):
        return None
    try:
        obj = json.loads(text)
    except ValueError:
        return None
    if not isinstance(obj, dict) or "step" not in obj:
        return None
    step = obj.pop("step")
    if isinstance(step, bool) or not isinstance(step, (int, float)):
        return None
    epoch = obj.pop("epoch", None)
    metrics = {k: float(v) for k, v in obj.items()
               if isinstance(v, (int, float)) and not isinstance(v, bool)}
    return int(step), metrics, (float(epoch) if isinstance(epoch, (int, float)) else None)
