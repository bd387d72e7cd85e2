"""The built-in demo home: a few experiments (a script run logging through the tracking API and
one of each installed adapter that has a default objective), ready to launch."""

from __future__ import annotations

import sys
from pathlib import Path

from .api import Engine

TOY_SCRIPT = Path(__file__).with_name("examples") / "toy_train.py"
TOY_COMMAND = f"{sys.executable} {TOY_SCRIPT} --lr {{lr}} --steps {{steps}}"


async def seed_demo(engine: Engine, launch: bool = True) -> list[str]:
    """Create the demo experiments if missing; launch one run of each new one. Returns notes."""
    notes: list[str] = []
    existing = {e.name for e in await engine.list_experiments()}
    wanted = [
        ("toy-lr-1e-2", "script", {"command": TOY_COMMAND, "lr": 0.01, "steps": 300}),
        ("toy-lr-3e-2", "script", {"command": TOY_COMMAND, "lr": 0.03, "steps": 300}),
    ]
    if "vlm_quantization" in engine.adapter_names():
        # the adapter's defaults: about 1-2 minutes on 2 CPU cores to a model that retrieves
        # well (mAP@64 near 1.0 on the generated test split); then Search offers the index
        wanted.append(("vlm-base-64bit", "vlm_quantization", {}))
    for name, adapter, config in wanted:
        if name in existing:
            continue
        objective = ("val/loss", "minimize") if adapter == "script" else (None, None)
        exp = await engine.create_experiment(name, adapter, config, tags=["demo"],
                                             objective=objective[0], direction=objective[1],
                                             notes="created by labdeck demo")
        notes.append(f"created experiment {exp.name} ({adapter})")
        if launch:
            run_id, job_id = await engine.start_run(exp.name)
            notes.append(f"queued run {run_id} (job {job_id}) of {exp.name}")
    return notes
