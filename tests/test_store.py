"""Store: migrations, metrics ingestion and reads, NaN/inf, checkpoints, config validation."""

from __future__ import annotations

import math
import os
import sqlite3

import pytest

from adapters.base import ConfigError
from engine.api import Engine
from engine.data.experiments import get_or_create as get_or_create_experiment
from engine.data.runs import insert_run
from engine.experiments import ConflictError
from engine.metric_writer import MetricWriter
from engine.paths import UnsafePathError
from engine.schema import SCHEMA_VERSION, SchemaTooNewError, connect_sync, write_tx


def _run(home) -> tuple[sqlite3.Connection, int]:
    conn = connect_sync(home / "labdeck.db")
    exp = get_or_create_experiment(conn, "m", "script", {})
    with write_tx(conn):
        run_id, _ = insert_run(conn, exp, {}, "running", "tracking", pid=os.getpid())
    return conn, run_id


def test_pragmas_and_schema_version(home):
    conn = connect_sync(home / "labdeck.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 5000
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


async def test_newer_schema_is_refused(home):
    conn = connect_sync(home / "labdeck.db")
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 5}")
    conn.close()
    with pytest.raises(SchemaTooNewError, match="upgrade labdeck"):
        await Engine.open(home)


async def test_nan_and_inf_round_trip(home):
    conn, run_id = _run(home)
    w = MetricWriter(conn, run_id)
    w.log({"a": math.nan, "b": math.inf, "c": -math.inf, "d": 1.5}, step=0)
    w.log({"a": 2.0}, step=1)
    w.close()
    async with Engine.session(home) as engine:
        a = await engine.all_metrics(run_id, "a")
        assert math.isnan(a[0][1]) and a[1] == (1, 2.0)
        assert (await engine.all_metrics(run_id, "b"))[0][1] == math.inf
        assert (await engine.all_metrics(run_id, "c"))[0][1] == -math.inf
        batch = await engine.read_metrics_since(run_id, 0)
        assert math.isnan(batch.points["a"][0][1])
        summary = await engine.run_summary(run_id)
        assert summary["a"]["nan_count"] == 1 and summary["a"]["count"] == 2
        assert summary["b"]["last"] == math.inf


async def test_incremental_reads_from_a_cursor(home):
    conn, run_id = _run(home)
    w = MetricWriter(conn, run_id)
    w.log({"x": 1.0, "y": 2.0}, step=0)
    w.flush()
    async with Engine.session(home) as engine:
        b1 = await engine.read_metrics_since(run_id, 0)
        assert set(b1.points) == {"x", "y"}
        b2 = await engine.read_metrics_since(run_id, b1.cursor)
        assert b2.points == {} and b2.cursor == b1.cursor
        w.log({"x": 3.0}, step=1)
        w.flush()
        b3 = await engine.read_metrics_since(run_id, b1.cursor)
        assert [p[:2] for p in b3.points["x"]] == [(1, 3.0)]
        b4 = await engine.read_metrics_since(run_id, 0, keys=["y"])
        assert list(b4.points) == ["y"]
    w.close()


async def test_downsampled_read_keeps_extremes(home):
    conn, run_id = _run(home)
    w = MetricWriter(conn, run_id, max_buffer=10**9)
    n = 200_000
    w.log_many(("loss", i, math.sin(i / 1000.0)) for i in range(n))
    w.log_many([("loss", 123_457, 50.0)])  # overwrite-free spike (a second point at that step)
    w.log_many([("loss", 77_777, -40.0)])
    w.close()
    async with Engine.session(home) as engine:
        pts = await engine.read_metric(run_id, "loss", max_points=1000)
        assert pts.downsampled and len(pts.x) <= 1000 and pts.total == n + 2
        assert max(pts.y) == 50.0 and min(pts.y) == -40.0
        assert pts.x == sorted(pts.x)
        zoom = await engine.read_metric(run_id, "loss", max_points=5000, last_n_steps=1000)
        assert min(zoom.x) > n - 1000 - 1 and len(zoom.x) == 1000
        small = await engine.read_metric(run_id, "loss", max_points=10**6)
        assert not small.downsampled and len(small.x) == n + 2


async def test_bad_config_names_the_field_and_creates_nothing(home):
    async with Engine.session(home) as engine:
        for cfg, field in [({"command": "x {a}", "a": [1]}, "a"),
                           ({"command": "x", "timeout_s": -1.0}, "timeout_s"),
                           ({"command": "x", "timeout_s": "soon"}, "timeout_s"),
                           ({"command": "x", "bogus": 1}, "bogus"),
                           ({"command": ""}, "command"),
                           ({"command": "run {lr}"}, "lr")]:
            with pytest.raises(ConfigError) as exc:
                await engine.create_experiment("bad", "script", cfg)
            assert field in exc.value.errors and field in str(exc.value)
        assert await engine.list_experiments() == []
        await engine.create_experiment("ok", "script", {"command": "true"})
        with pytest.raises(ConflictError):
            await engine.create_experiment("ok", "script", {"command": "true"})


async def test_checkpoint_list_and_safe_delete(home, tmp_path):
    conn, run_id = _run(home)
    async with Engine.session(home) as engine:
        ck = engine.run_dir(run_id) / "checkpoints"
        ck.mkdir(parents=True)
        (ck / "best.pt").write_bytes(b"x" * 100)
        (ck / "last.pt").write_bytes(b"y" * 10)
        outside = tmp_path / "precious.txt"
        outside.write_text("keep me")
        (ck / "escape.pt").symlink_to(outside)
        (engine.run_dir(run_id) / "secret").write_text("keep")
        names = [c["name"] for c in await engine.list_checkpoints(run_id)]
        assert "best.pt" in names and "last.pt" in names
        for bad in ["../secret", "..", "/etc/passwd", "a\x00b", "sub/../../secret", "escape.pt",
                    str(outside)]:
            with pytest.raises(UnsafePathError):
                await engine.delete_checkpoint(run_id, bad)
        assert outside.read_text() == "keep me"
        assert (engine.run_dir(run_id) / "secret").exists()
        await engine.delete_checkpoint(run_id, "last.pt")
        names = [c["name"] for c in await engine.list_checkpoints(run_id)]
        assert "last.pt" not in names and "best.pt" in names
        with pytest.raises(FileNotFoundError):
            await engine.delete_checkpoint(run_id, "nope.pt")
    assert sqlite3.connect(str(home / "labdeck.db")).execute(
        "PRAGMA integrity_check").fetchone()[0] == "ok"


async def test_compare_marks_best_by_direction(home):
    conn = connect_sync(home / "labdeck.db")
    async with Engine.session(home) as engine:
        for i, (lr, loss, acc) in enumerate([(0.1, 0.5, 0.7), (0.2, 0.3, 0.6), (0.3, 0.4, 0.9)]):
            await engine.create_experiment(f"c{i}", "script", {"command": "t {lr}", "lr": lr})
            exp_id = (await engine.get_experiment(f"c{i}")).id
            with write_tx(conn):
                run_id, _ = insert_run(conn, exp_id, {"command": "t {lr}", "lr": lr}, "running",
                                       "job")
            w = MetricWriter(conn, run_id)
            w.log({"val/loss": loss + 1, "val/acc": acc}, step=0)
            w.log({"val/loss": loss, "val/acc": acc - 0.1}, step=1)
            w.close()
        c = await engine.compare(["c0", "c1", "c2"])
        assert c.differing == ["lr"]
        assert c.metrics["val/loss"]["best_last"] == 1  # min
        assert c.metrics["val/acc"]["best_last"] == 2  # max
        assert c.metrics["val/acc"]["best"] == [0.7, 0.6, 0.9]
