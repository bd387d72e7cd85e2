"""Built-in ``script`` adapter: a training job runs any user command.

Config: ``command`` (a template such as ``python train.py --lr {lr}``), ``cwd``, ``timeout_s``,
``objective`` and ``direction`` (the metric that ranks the experiment's runs, as the command
logs it, and which way it improves; they become the experiment's objective, so the TUI's form
sets it too), and one extra key for every ``{placeholder}`` the command uses (an extra key the
command does not use is rejected as unknown). The command logs through labdeck's tracking API, or prints
JSON-object lines with a ``step`` and numeric metrics, which are ingested; other output goes to
the run's log.

Environment. The command inherits the worker's, with the job's devices: the GPUs the scheduler
gave it (``CUDA_VISIBLE_DEVICES`` with ``CUDA_DEVICE_ORDER=PCI_BUS_ID``, and their physical
indices in ``LABDECK_GPU_INDICES``; none for a CPU job), ``LABDECK_RUN_ID`` and the home.

Progress. A command has no total to count against, so the job's progress message says how
far it got instead: ``step 1234 (41.5 steps/s)``, from the steps of its metric lines, at most
once a second (the fraction stays 0; screens show the step and the rate).

Output. One reader thread reads the command's stdout as bytes and decodes each line as UTF-8
with replacement characters, so no byte sequence can stop it. A JSON object with a ``step``
key is a metric line. A metric line that cannot be stored is a *bad line*: skipped whole,
counted (``bad_lines`` in the result) and reported in the run's log, one line each for the
first 20 and then a summary (``... N more bad metric lines``); ingestion goes on. Bad are a
step that is not an integer (a float step must be integral), not finite, or outside SQLite's
int64 range, an epoch that is not finite, and an epoch or metric value that does not fit a
float: an integer literal beyond +-1.8e308 is reported, not stored as +-inf, since an integer
that large is a bug in the script. (A float literal such as ``1e400`` already is inf when parsed, and is stored as
inf, like NaN.) A line whose values the reporter refuses (ValueError) is a bad line too.
Other output, and any piece of a line longer than 1 MiB, goes to the log. If the reporter
fails otherwise (a full disk), the reader keeps draining the pipe, so the command never
blocks on it; the adapter then stops the command and the job fails with that error. So it
does if the reader thread itself fails.

Stopping. The command runs in a process group of its own, led by ``_lifeline.py``, which
kills the group should this process die (a worker killed with SIGKILL), and this adapter is
the only one that signals it: on a stop request (a cancel), a timeout or a failure, the group
gets one SIGTERM, then the grace (the reporter's ``stop_grace_s``, the engine's cancel grace;
10 s for a reporter without one), then SIGKILL. What is left in the group when the command
ends is killed with it. What escaped the group (a ``setsid()`` descendant) is left to the
engine, which kills a job's whole process tree when the adapter returns.
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
    Field("objective", "str", "", "the metric that ranks runs, as the command logs it"
          " (e.g. val/loss); empty: none"),
    # plain text, not a choices field: a study lists fields with choices as parameters
    Field("direction", "str", "auto", "which way the objective improves: minimize, maximize"
          " or auto (from its name: loss minimize, acc maximize)"),
)
_DIRECTIONS = ("auto", "minimize", "maximize")
_RESERVED = {f.name for f in _BASE_FIELDS}
_OBJECTIVE_KEYS = ("objective", "direction")


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
        direction = out.get("direction")
        if isinstance(direction, str) and direction.strip().lower() not in _DIRECTIONS:
            errors["direction"] = f"expected one of {', '.join(_DIRECTIONS)}, got {direction!r}"
        if errors:
            raise ConfigError(errors)
        if not out["cwd"]:
            out["cwd"] = os.getcwd()
        if not out["objective"].strip():  # none named: the config says nothing about it
            for key in _OBJECTIVE_KEYS:
                out.pop(key)
        else:
            out["objective"] = out["objective"].strip()
            out["direction"] = out["direction"].strip().lower()
        out.update(extra)
        return out

    @classmethod
    def objective_from_config(cls, config: Mapping[str, Any]) -> tuple[str, str | None] | None:
        objective = config.get("objective")
        if not isinstance(objective, str) or not objective.strip():
            return None
        direction = config.get("direction")
        return objective.strip(), (direction if direction in ("minimize", "maximize") else None)

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
        grace = _stop_grace(reporter)
        reporter.info(f"$ {command}")
        # the group's leader kills the group if this process dies (see _lifeline.py)
        lifeline, keep = os.pipe()
        try:
            proc = subprocess.Popen(
                [sys.executable, "-S", _LIFELINE, str(lifeline), "/bin/sh", "-c", command],
                cwd=config["cwd"] or None, env=env, stdout=subprocess.PIPE, stderr=None,
                process_group=0, pass_fds=(lifeline,))
        except BaseException:
            os.close(keep)
            raise
        finally:
            os.close(lifeline)
        try:
            return self._watch(proc, reporter, config, grace)
        finally:
            os.close(keep)  # had the command not ended, this would end it

    def _watch(self, proc: subprocess.Popen, reporter: Reporter, config: dict[str, Any],
               grace: float) -> dict[str, Any]:
        assert proc.stdout is not None
        reader = _OutputReader(proc.stdout, reporter)
        deadline = time.monotonic() + config["timeout_s"] if config["timeout_s"] else None
        stopped = timed_out = False
        while proc.poll() is None:
            if reporter.should_stop():
                stopped = True
            elif deadline and time.monotonic() > deadline:
                timed_out = True
            elif reader.failure is None:
                time.sleep(_POLL_S)
                continue
            _terminate(proc, grace)
            break
        proc.wait()
        _signal_group(proc.pid, signal.SIGKILL)  # what the command left running in its group
        reader.finish()
        if reader.failure is not None:
            exc = reader.failure
            raise RuntimeError(f"recording the command's output failed:"
                               f" {type(exc).__name__}: {exc}") from exc
        if timed_out:
            raise RuntimeError(f"command timed out after {config['timeout_s']} s")
        # a command that ended while a stop was asked for was stopped, whoever signalled it
        stopped = stopped or reporter.should_stop()
        if not stopped and proc.returncode != 0:
            raise RuntimeError(f"command exited with code {proc.returncode}")
        return {"exit_code": proc.returncode, "ingested_points": reader.ingested,
                "stopped": stopped, "bad_lines": reader.bad_lines}


_LIFELINE = str(Path(__file__).with_name("_lifeline.py"))
_POLL_S = 0.05
_DEFAULT_GRACE_S = 10.0
_MAX_LINE = 1 << 20  # longer lines reach the log in pieces and are never metric lines
_BAD_LINES_SHOWN = 20
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _stop_grace(reporter: Reporter) -> float:
    grace = getattr(reporter, "stop_grace_s", None)
    if isinstance(grace, bool) or not isinstance(grace, (int, float)) or not grace >= 0:
        return _DEFAULT_GRACE_S
    return float(grace)


def _signal_group(pgid: int, sig: int) -> bool:
    """Signal a process group; False when it has no member left."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _terminate(proc: subprocess.Popen, grace: float) -> None:
    """One SIGTERM to the command's group; SIGKILL once ``grace`` seconds pass with anything of
    the group still running (the command's shell may end at once while its child cleans up)."""
    _signal_group(proc.pid, signal.SIGTERM)
    end = time.monotonic() + grace
    while time.monotonic() < end:
        if proc.poll() is not None and not _signal_group(proc.pid, 0):
            return
        time.sleep(_POLL_S)
    _signal_group(proc.pid, signal.SIGKILL)


class BadLine(ValueError):
    """A metric line that cannot be stored; the message says why."""


class _OutputReader:
    """Drains the command's stdout in a thread until EOF, whatever happens: a line it cannot
    decode, parse or store is reported and skipped, and once the reporter has failed the rest
    is drained without storing. ``failure`` (the reporter's error, or the reader's own) tells
    the adapter to stop the command and fail the job."""

    def __init__(self, stream: Any, reporter: Reporter):
        self._stream = stream
        self._reporter = reporter
        self.ingested = 0
        self.bad_lines = 0
        self._lines = 0
        self._error: BaseException | None = None
        self._eof = False
        self._closed = False  # the adapter has returned: store and report nothing more
        self._lock = threading.Lock()
        self._waiting_since: float | None = None  # set while blocked reading the pipe
        self._steps = _StepRate(self._report_steps)
        self._thread = threading.Thread(target=self._run, name="labdeck-script-output",
                                         daemon=True)
        self._thread.start()

    @property
    def failure(self) -> BaseException | None:
        if self._error is None and not self._thread.is_alive() and not self._eof:
            self._error = RuntimeError("the output reader stopped")  # cannot happen; say so
        return self._error

    def _run(self) -> None:
        try:
            piece = False  # the previous read was part of an over-long line
            while True:
                self._waiting_since = time.monotonic()
                raw = self._stream.readline(_MAX_LINE)
                self._waiting_since = None
                if not raw:
                    self._eof = True
                    return
                whole = raw.endswith(b"\n") or len(raw) < _MAX_LINE  # or the last line
                if not piece:
                    self._lines += 1
                try:
                    self._line(raw.decode("utf-8", errors="replace"), parse=not piece and whole)
                except BaseException as exc:  # noqa: BLE001 - a bad line, never the reader's end
                    self._bad(f"{type(exc).__name__}: {exc}", "")
                piece = not whole
        except BaseException as exc:  # noqa: BLE001 - the adapter sees it through `failure`
            self._error = self._error or exc
            self._say(f"labdeck: reading the command's output failed: {type(exc).__name__}:"
                      f" {exc}")
        finally:
            self._stream.close()

    def _line(self, text: str, parse: bool) -> None:
        try:
            parsed = _metric_line(text) if parse else None
        except BadLine as exc:
            self._bad(str(exc), text)
            return
        if parsed is None:
            _echo(text)
            return
        step, metrics, epoch = parsed
        with self._lock:
            if (not metrics or self._closed or self._error is not None
                    or self._reporter.should_stop()):  # after a stop, nothing more counts
                return
            try:
                self._reporter.log(metrics, step=step, epoch=epoch)
            except (ValueError, TypeError) as exc:  # the reporter refused this line's values
                self._bad(str(exc), text)
                return
            except BaseException as exc:  # noqa: BLE001 - a failing store ends the job
                self._error = exc
                self._say(f"labdeck: storing metrics failed ({type(exc).__name__}: {exc});"
                          " stopping the command")
                return
            self.ingested += len(metrics)
            self._steps.seen(step)

    def _report_steps(self, step: int, rate: float | None) -> None:
        """The job's progress message: the step reached, and the rate once there is one."""
        shown = f"step {step}" + (f" ({rate:.3g} steps/s)" if rate is not None else "")
        try:
            self._reporter.progress(0.0, shown)
        except Exception:  # noqa: BLE001 - a progress line is never worth stopping for
            pass

    def _bad(self, reason: str, text: str) -> None:
        if self._closed:
            return
        self.bad_lines += 1
        if self.bad_lines <= _BAD_LINES_SHOWN:
            self._say(f"labdeck: bad metric line {self._lines}: {reason}: {_clip(text)}")

    def _say(self, message: str) -> None:
        try:
            self._reporter.info(message)
        except BaseException:  # noqa: BLE001 - the log is gone too; keep draining
            pass

    def finish(self, idle_s: float = 2.0, most_s: float = 30.0) -> None:
        """Wait for the end of the output: the command is gone, but a descendant that left
        its group may still hold the pipe, so stop waiting once the reader has waited
        ``idle_s`` for a line. Then report the bad lines not shown one by one."""
        start = time.monotonic()
        while self._thread.is_alive():
            t, waiting = time.monotonic(), self._waiting_since
            if (waiting is not None and t - waiting > idle_s) or t - start > most_s:
                break
            self._thread.join(_POLL_S)
        with self._lock:
            self._closed = True
        if self.bad_lines > _BAD_LINES_SHOWN:
            self._say(f"labdeck: ... {self.bad_lines - _BAD_LINES_SHOWN} more bad metric lines"
                      f" ({self.bad_lines} in all, skipped)")


class _StepRate:
    """Turns the steps of metric lines into ``report(step, steps per second)`` calls, at most
    one every ``every_s``; the rate is measured from the first step seen."""

    def __init__(self, report: Any, every_s: float = 1.0) -> None:
        self._report = report
        self._every_s = every_s
        self._first: tuple[int, float] | None = None
        self._last_report = -math.inf
        self._highest: int | None = None

    def seen(self, step: int) -> None:
        t = time.monotonic()
        if self._first is None:
            self._first = (step, t)
        if self._highest is not None and step <= self._highest:
            return  # several metric lines of one step, or an older step logged late
        self._highest = step
        if t - self._last_report < self._every_s:
            return
        self._last_report = t
        first_step, first_t = self._first
        rate = (step - first_step) / (t - first_t) if t > first_t and step > first_step else None
        self._report(step, rate)


def _echo(text: str) -> None:
    try:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        sys.stdout.flush()
    except (OSError, ValueError):
        pass  # the log cannot be written (a full disk): the line is lost, the pipe drained


def _clip(text: str, limit: int = 120) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"


def _metric_line(text: str) -> tuple[int, dict[str, float], float | None] | None:
    """(step, metrics, epoch) of a metric line, None for other output; BadLine when it is a
    metric line that cannot be stored."""
    text = text.strip()
    if not (text.startswith("{") and text.endswith("}")):
        return None
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(obj, dict) or "step" not in obj:
        return None
    step = _step(obj.pop("step"))
    epoch = obj.pop("epoch", None)
    if isinstance(epoch, bool) or not isinstance(epoch, (int, float)):
        epoch = None
    else:
        epoch = _float("epoch", epoch)
        if not math.isfinite(epoch):
            raise BadLine(f"epoch must be finite, got {epoch}")
    metrics = {k: _float(f"value of {k!r}", v) for k, v in obj.items()
               if isinstance(v, (int, float)) and not isinstance(v, bool)}
    return step, metrics, epoch


def _step(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadLine(f"step must be an integer, got {_clip(json.dumps(value), 40)}")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise BadLine(f"step must be finite, got {value}")
        if not value.is_integer():
            raise BadLine(f"step must be an integer, got {value}")
        value = int(value)
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise BadLine(f"step {_clip(str(value), 40)} is outside the int64 range")
    return value


def _float(name: str, value: int | float) -> float:
    try:
        return float(value)
    except OverflowError:
        raise BadLine(f"{name} overflows a float") from None
