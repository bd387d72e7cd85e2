"""What users type or log never breaks labdeck: control characters in text output, non-finite
numbers and unusable placeholders in configs."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest
from helpers import labdeck_env

from adapters.base import ConfigError, ConfigSchema, Field
from adapters.script import ScriptAdapter
from engine.data.experiments import get_or_create as get_or_create_experiment
from engine.data.runs import finish_run, insert_run
from engine.metric_writer import MetricWriter
from engine.schema import connect_sync, write_tx

NASTY_KEYS = ["a\x01b", "line\nbreak", "esc\x1b[2Jcleared", "cr\rover", "rtl\u202eevil"]


def cli(home, *args):
    return subprocess.run([sys.executable, "-m", "cli", *args], env=labdeck_env(home),
                          capture_output=True, text=True, timeout=120)


def _raw_controls(text: str) -> list[str]:
    return [c for c in text if (ord(c) < 32 and c not in "\n\t") or 0x7f <= ord(c) <= 0x9f
            or c in "\u2028\u2029\u202a\u202b\u202c\u202d\u202e"]


def test_control_characters_in_keys_and_names_are_escaped_in_text_output(home):
    conn = connect_sync(home / "labdeck.db")
    exp = get_or_create_experiment(conn, "exp\x1b]0;title\x07", "script", {})
    with write_tx(conn):
        run_id, _ = insert_run(conn, exp, {}, "running", "tracking", pid=os.getpid())
    w = MetricWriter(conn, run_id)
    for step in range(3):
        w.log({k: float(step) for k in NASTY_KEYS}, step=step)
    w.close()
    finish_run(conn, run_id, "failed", "boom\x1b[31m\nsecond line")
    outputs = {}
    for args in (["run", "show", str(run_id)], ["run", "metrics", str(run_id)],
                 ["run", "list"], ["exp", "list"], ["exp", "show", "1"]):
        res = cli(home, *args)
        assert res.returncode == 0, (args, res.stderr)
        assert _raw_controls(res.stdout) == [], (args, res.stdout)
        outputs[" ".join(args[:2])] = res.stdout
    show = outputs["run show"]
    for shown in ("a\\x01b", "line\\nbreak", "esc\\x1b[2Jcleared", "cr\\rover", "rtl\\u202eevil"):
        assert shown in show and shown in outputs["run metrics"]
    # one table row per key: a newline in a key does not split its row
    assert sum(line.startswith(("a\\x01b", "line\\nbreak", "esc", "cr", "rtl"))
               for line in show.splitlines()) == len(NASTY_KEYS)
    assert "error: boom\\x1b[31m\nsecond line" in show  # an error keeps its own lines
    assert "exp\\x1b]0;title\\x07" in outputs["exp list"] and show.startswith("exp\\x1b]0;")
    # --json is escaped by JSON itself and keeps the exact keys
    data = json.loads(cli(home, "run", "show", str(run_id), "--json").stdout)
    assert set(data["summary"]) == set(NASTY_KEYS)


def test_non_finite_numbers_are_refused_naming_the_field():
    field = Field("lr", "float", 0.1)
    for text in ("1e400", "-1e400", "inf", "nan", "Infinity"):
        with pytest.raises(ValueError, match="finite"):
            field.parse(text)
    with pytest.raises(ValueError, match="expected a number, got 'abc'"):
        field.parse("abc")
    schema = ConfigSchema((field, Field("n", "int", 1)))
    for value in (math.inf, -math.inf, math.nan, 10**400):
        with pytest.raises(ConfigError, match="lr: must be a finite number") as exc:
            schema.validate({"lr": value})
        assert set(exc.value.errors) == {"lr"}
    for items, field_name in ((["lr=1e400"], "lr"), (["n=1e400"], "n"), (["n=abc"], "n")):
        with pytest.raises(ConfigError) as exc:
            schema.parse_assignments(items)
        assert set(exc.value.errors) == {field_name}


def test_script_adapter_refuses_timeouts_and_values_that_are_no_finite_number():
    for text in ("1e400", "inf", "nan", "abc"):
        with pytest.raises(ConfigError) as exc:
            ScriptAdapter.parse_assignments(["command=true", f"timeout_s={text}"])
        assert set(exc.value.errors) == {"timeout_s"} and "timeout_s" in str(exc.value)
    for value in (math.inf, math.nan):
        with pytest.raises(ConfigError) as exc:
            ScriptAdapter.validate_config({"command": "true", "timeout_s": value})
        assert set(exc.value.errors) == {"timeout_s"}
    parsed = ScriptAdapter.parse_assignments(["command=run {lr}", "lr=1e400"])
    with pytest.raises(ConfigError, match="lr: must be a finite number"):
        ScriptAdapter.validate_config(parsed)


def test_cli_refuses_an_infinite_timeout_at_create(home):
    for text in ("1e400", "abc"):
        res = cli(home, "exp", "create", "x", "--adapter", "script", "--set", "command=true",
                  "--set", f"timeout_s={text}")
        assert res.returncode == 1 and "timeout_s" in res.stderr, res.stderr
        assert res.stderr.count("\n") == 1
    assert json.loads(cli(home, "exp", "list", "--json").stdout) == []


@pytest.mark.parametrize("placeholder", [
    "{x:>99999999999}", "{x:.3}", "{x!r}", "{x.__class__}", "{x[0]}", "{}", "{0}", "{x:{x}}"])
def test_script_commands_allow_only_plain_placeholders(placeholder):
    with pytest.raises(ConfigError) as exc:
        ScriptAdapter.validate_config({"command": f"echo {placeholder}", "x": 1})
    assert "command" in exc.value.errors and "plain {name}" in exc.value.errors["command"]
    with pytest.raises(ConfigError):
        ScriptAdapter().render_command({"command": f"echo {placeholder}", "x": 1, "cwd": "."})


def test_plain_placeholders_and_literal_braces_render():
    cfg = ScriptAdapter.validate_config(
        {"command": "echo {{x}} {x} {_y2} '{{}}'", "x": "a b", "_y2": 3})
    assert ScriptAdapter().render_command(cfg) == "echo {x} 'a b' 3 '{}'"
