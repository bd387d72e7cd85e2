"""The built-in demo home: a few experiments (a script run logging through the tracking API and
a real-emoji retrieval model), ready to launch, and sample pictures to search with."""

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
        # the adapter's defaults: real emoji (OpenMoji) with English and Korean captions, a
        # few minutes on 2 CPU cores (README: quality table); then Search offers the index,
        # and <home>/samples holds pictures to search with
        wanted.append(("emoji-64bit", "vlm_quantization", {}))
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
    samples = engine.settings.home / "samples"
    if "vlm_quantization" in engine.adapter_names() and not samples.is_dir():
        try:
            written = engine.adapter_class("vlm_quantization").sample_images(samples)
        except Exception as exc:  # noqa: BLE001 - the demo runs without them
            notes.append(f"no sample images ({exc})")
        else:
            if written:
                notes.append(f"wrote {len(written)} sample images to {samples}")
    return notes
