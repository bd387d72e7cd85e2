"""A deterministic home for TUI tests and snapshots: fixed names, values and timestamps."""

from __future__ import annotations

import asyncio
import json
import math
import os
from pathlib import Path

from engine.api import Engine
from engine.data.runs import finish_run
from engine.metric_writer import MetricWriter
from engine.schema import connect_sync

FROZEN_NOW = 1_750_000_000.0
REPO = Path(__file__).resolve().parents[2]
# path-independent, so snapshots match in any checkout: the script adapter puts labdeck's
# interpreter first on PATH, and workers get the repository on PYTHONPATH
TOY = "python -m engine.examples.toy_train --lr {lr} --steps {steps} --sleep 0.01"
SWEEP = (("lr-sweep-1e-2", 0.01, "completed"), ("lr-sweep-3e-2", 0.03, "completed"),
         ("lr-sweep-1e-1", 0.1, "running"))


def toy_config(lr: float, steps: int = 200) -> dict:
    return {"command": TOY, "cwd": "/tmp", "lr": lr, "steps": steps}


async def _create(home: Path) -> None:
    async with Engine.session(home) as engine:
        for name, lr, _ in SWEEP:
            await engine.create_experiment(name, "script", toy_config(lr), objective="val/loss",
                                           direction="minimize", tags=["sweep"])
            await engine.start_run(name)
        await engine.create_experiment("baseline", "script", toy_config(0.005, 100),
                                       objective="val/loss", direction="minimize",
                                       tags=["ref"])


def seed_home(home: Path) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    asyncio.run(_create(home))
    conn = connect_sync(home / "labdeck.db")
    t0 = FROZEN_NOW - 7200
    for i, (_name, lr, status) in enumerate(SWEEP):
        run_id = i + 1
        writer = MetricWriter(conn, run_id)
        steps = 200 if status == "completed" else 120
        for step in range(steps):
            loss = 2.0 * math.exp(-lr * 8 * step / 20) + 0.05 * (1 + i) + 0.02 * math.sin(step)
            writer.log({"train/loss": loss}, step=step, epoch=step / 100)
            if step % 10 == 9:
                writer.log({"val/loss": loss * 1.1, "val/acc": 1 - loss / 3}, step=step)
        writer.close()
        with conn:
            conn.execute("UPDATE metrics SET wall=? + step WHERE key_id IN"
                         " (SELECT id FROM metric_keys WHERE run_id=?)", (t0, run_id))
        start = t0 + 600 * i
        if status == "completed":
            finish_run(conn, run_id, "completed", only_if_running=False)
            with conn:
                conn.execute("UPDATE runs SET started=?, finished=?, created=? WHERE id=?",
                             (start, start + 200, start, run_id))
                conn.execute("UPDATE jobs SET status='completed', progress=1, started=?,"
                             " finished=?, created=?, message='done' WHERE run_id=?",
                             (start, start + 200, start, run_id))
        else:
            with conn:
                conn.execute("UPDATE runs SET status='running', started=?, created=? WHERE id=?",
                             (FROZEN_NOW - 120, FROZEN_NOW - 120, run_id))
                conn.execute("UPDATE jobs SET status='running', progress=0.62, started=?,"
                             " created=?, message='step 124/200' WHERE run_id=?",
                             (FROZEN_NOW - 120, FROZEN_NOW - 120, run_id))
    result = {"view_type": "retrieval_table", "summary": {"map_i2t_64": 0.71, "map_t2i_64": 0.69},
              "data": {"rows": [
                  {"bits": b, "map_i2t": 0.4 + b / 300, "map_t2i": 0.38 + b / 310,
                   "p@10": 0.5 + b / 400} for b in (8, 16, 32, 64, 128)]}}
    with conn:
        conn.execute(
            "INSERT INTO jobs(type, status, run_id, target, params, progress, message, result,"
            " created, started, finished) VALUES ('eval','completed',1,?,?,1,'evaluated',?,?,?,?)",
            ("lr-sweep-1e-2 › run 1 › best.pt", json.dumps({"checkpoint": "best.pt"}),
             json.dumps(result), t0 + 900, t0 + 900, t0 + 960))
        conn.execute("UPDATE experiments SET created=?, updated=? - id * 3600", (t0, FROZEN_NOW))
    conn.close()
    ckpt = home / "runs" / "1" / "checkpoints"
    ckpt.mkdir(parents=True, exist_ok=True)
    for name, size in (("best.pt", 123_456), ("last.pt", 234_567)):
        (ckpt / name).write_bytes(b"\0" * size)
        os.utime(ckpt / name, (t0 + 300, t0 + 300))
    log = home / "runs" / "1" / "job-1.log"
    log.write_text("".join(f"step {s} w=1.{s:03d} b=0.5\n" for s in range(0, 200, 50)) + "done\n")
    return home
