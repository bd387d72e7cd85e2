"""The script adapter names its experiment's objective (issue 15 item 13): its metrics are the
user's own, so its config takes ``objective`` and ``direction``, which the experiment ranks its
runs by (and the TUI's form shows, as it shows every config field)."""

from __future__ import annotations

import sys

import pytest

from adapters.base import ConfigError
from adapters.script import ScriptAdapter
from engine.api import Engine

PY = sys.executable


def test_objective_fields_are_in_the_schema_and_left_out_when_empty():
    names = ScriptAdapter.config_schema().names()
    assert "objective" in names and "direction" in names
    plain = ScriptAdapter.validate_config({"command": "true"})
    assert "objective" not in plain and "direction" not in plain  # old configs stay as they were
    named = ScriptAdapter.validate_config({"command": "true", "objective": " acc "})
    assert named["objective"] == "acc" and named["direction"] == "auto"
    assert ScriptAdapter.objective_from_config(named) == ("acc", None)
    assert ScriptAdapter.objective_from_config(
        {**named, "direction": "minimize"}) == ("acc", "minimize")
    assert ScriptAdapter().render_command({**named, "command": "echo hi"}) == "echo hi"
    with pytest.raises(ConfigError) as err:
        ScriptAdapter.validate_config({"command": "true", "objective": "acc", "direction": "up"})
    assert "expected one of auto, minimize, maximize" in err.value.errors["direction"]
    assert ScriptAdapter.validate_config(
        {"command": "true", "objective": "acc", "direction": " Maximize"})["direction"] == (
        "maximize")


async def test_the_experiment_takes_the_objective_its_config_names(home, tmp_path):
    script = tmp_path / "acc.py"
    script.write_text("import json\nfor s in range(3):\n"
                      "    print(json.dumps({'step': s, 'acc': 0.5 + s / 10}))\n")
    async with Engine.session(home) as engine:
        exp = await engine.create_experiment("acc-exp", "script", {
            "command": f"{PY} {script}", "cwd": str(tmp_path), "objective": "acc"})
        assert (exp.objective, exp.direction) == ("acc", "maximize")  # auto: from the name
        await engine.ensure_scheduler()
        _, job_id = await engine.start_run("acc-exp")
        job = await engine.wait_job(job_id, timeout=60)
        assert job.status == "completed", job
        exp = await engine.get_experiment("acc-exp")
        assert exp.best_value is not None and abs(exp.best_value - 0.7) < 1e-9
        # editing the config's objective changes the experiment's
        exp = await engine.update_experiment("acc-exp", config={
            **exp.config, "objective": "acc", "direction": "minimize"})
        assert (exp.objective, exp.direction) == ("acc", "minimize")
        # a config that names none leaves the experiment's objective alone
        plain = await engine.create_experiment("plain", "script", {"command": "true"},
                                               objective="loss", direction="minimize")
        plain = await engine.update_experiment("plain", config={"command": "true", "cwd": "/"})
        assert (plain.objective, plain.direction) == ("loss", "minimize")
