"""A home for the compare tests, as a new user's first hour leaves it: three experiments of
one script, each run once to the end, one of them then queued again and cancelled before it
started (its latest run has no metrics); a long command; a learning rate and an epoch
counter logged beside the results; map_8 ... map_128."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

from engine.api import Engine
from engine.data.runs import finish_run, insert_run
from engine.metric_writer import MetricWriter
from engine.schema import connect_sync, write_tx

COMMAND = ("python -m engine.examples.toy_train --lr {lr} --steps {steps} --sleep 0.01"
           " --data /datasets/shapes/a-rather-long-path/to/the/training/split")
EXPERIMENTS = (("cmp-lr-1e-2", 0.01), ("cmp-lr-3e-2", 0.03), ("cmp-lr-1e-1", 0.1))
BITS = (8, 16, 32, 64, 128)
CANCELLED = EXPERIMENTS[0][0]  # its run 2 was cancelled while queued


def seed_compare_home(home: Path) -> Path:
    home.mkdir(parents=True, exist_ok=True)

    async def create() -> list[int]:
        async with Engine.session(home) as engine:
            return [(await engine.create_experiment(
                name, "script", {"command": COMMAND, "lr": lr, "steps": 60},
                objective="val/loss", direction="minimize")).id for name, lr in EXPERIMENTS]

    ids = asyncio.run(create())
    conn = connect_sync(home / "labdeck.db")
    for exp_id, (_, lr) in zip(ids, EXPERIMENTS, strict=True):
        with write_tx(conn):
            run_id, _ = insert_run(conn, exp_id, {"command": COMMAND, "lr": lr, "steps": 60},
                                   "running", "job")
        writer = MetricWriter(conn, run_id)
        for step in range(60):
            loss = 2 * math.exp(-lr * 10 * step / 6) + 0.1
            writer.log({"train/loss": loss, "train/lr": lr * (1 - step / 60),
                        "epoch": step / 20}, step=step)
            if step % 10 == 9:
                writer.log({"val/loss": loss * 1.1,
                            **{f"val/map_{b}": 0.3 + b / 400 - loss / 10 for b in BITS}},
                           step=step)
        writer.close()
        finish_run(conn, run_id, "completed", only_if_running=False)
    conn.close()

    async def queue_and_cancel() -> None:
        async with Engine.session(home) as engine:
            run_id, _ = await engine.start_run(CANCELLED)
            await engine.cancel_run(run_id)

    asyncio.run(queue_and_cancel())
    return home
