"""Runs and their metrics: launch, read (incremental and downsampled), checkpoints, logs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from adapters.base import RESUME

from .experiments import NotFoundError
from .liveness import last_output
from .models import MetricBatch, MetricPoints, Run, dumps, loads
from .paths import (
    UnsafePathError,
    check_name,
    checkpoints_dir,
    delete_checkpoint,
    job_log_path,
    list_checkpoints,
    safe_child,
)
from .records import decode_value, last_output_sql, now
from .registry import get_adapter_class
from .settings import Settings
from .store import Store

_RUN_SQL = """
SELECT r.id, r.experiment_id, e.name, r.number, r.status, r.config, r.source, r.pid, r.created,
       r.started, r.finished, r.summary, r.steps, r.epochs, r.error, e.objective, e.direction,
       e.adapter, j.id, j.progress, j.message,
       CASE WHEN r.status = 'running' THEN {last_output} END
FROM runs r JOIN experiments e ON e.id = r.experiment_id
LEFT JOIN jobs j ON j.id = (SELECT MAX(id) FROM jobs WHERE run_id = r.id AND type = 'train')
""".format(last_output=last_output_sql("r.id", "j.activity", "j.started", "r.started"))
_X_COLUMNS = {"step": "m.step", "epoch": "m.epoch", "wall": "m.wall"}


def _run(row: tuple, settings: Settings, gone: dict[tuple[str, int], tuple[str, str]]) -> Run:
    run = Run(id=row[0], experiment_id=row[1], experiment=row[2], number=row[3], status=row[4],
              config=loads(row[5], {}), source=row[6], pid=row[7], created=row[8],
              started=row[9], finished=row[10], summary=loads(row[11]), steps=row[12],
              epochs=row[13], error=row[14], objective=row[15], direction=row[16],
              adapter=row[17], job_id=row[18], progress=row[19], message=row[20] or "")
    if run.status == "running":
        end = gone.get(("run", run.id)) or gone.get(("job", run.job_id))
        if end is not None:  # the database refused the update (a fault): say it anyway
            run.status, reason = end
            run.error = reason if run.status == "failed" else None
        else:
            log = job_log_path(settings, run.job_id, run.id) if run.job_id else None
            run.last_output = last_output(row[21], log)
    return run


class RunsMixin:
    store: Store

    async def start_run(self, exp_ref: str | int, *, resume_from: str | None = None,
                        config_overrides: dict[str, Any] | None = None) -> tuple[int, int]:
        """Queue a training run of an experiment. Returns (run_id, job_id)."""
        exp = await self.get_experiment(exp_ref)  # type: ignore[attr-defined]
        config = dict(exp.config)
        if config_overrides:
            config.update(config_overrides)
        validated, _, _ = self.validate_experiment(exp.adapter, config)  # type: ignore[attr-defined]
        resume = await self._resume_source(exp, resume_from) if resume_from else None
        t = now()
        async with self.store.write() as db:
            number = await self.store.scalar(
                "SELECT COALESCE(MAX(number), 0) + 1 FROM runs WHERE experiment_id=?", (exp.id,))
            cur = await db.execute(
                "INSERT INTO runs(experiment_id, number, status, config, source, created)"
                " VALUES (?,?,?,?,?,?)", (exp.id, number, "queued", dumps(validated), "job", t))
            run_id = cur.lastrowid
            params = {"resume_from": resume} if resume else {}
            cur = await db.execute(
                "INSERT INTO jobs(type, status, run_id, target, params, created)"
                " VALUES ('train','queued',?,?,?,?)",
                (run_id, f"{exp.name} › run {number}", dumps(params), t))
            job_id = cur.lastrowid
            await db.execute("UPDATE experiments SET updated=? WHERE id=?", (t, exp.id))
        return int(run_id), int(job_id)

    async def _resume_source(self, exp: Any, ref: str) -> dict[str, Any]:
        """Job params naming the checkpoint a new run of ``exp`` resumes from."""
        if not get_adapter_class(exp.adapter).supports(RESUME):
            raise ValueError(f"adapter {exp.adapter} cannot resume from a checkpoint")
        run, name = await self.resolve_checkpoint(ref, experiment=exp.id)
        if run.adapter != exp.adapter:
            raise ValueError(f"run {run.label} was trained by adapter {run.adapter}, not"
                             f" {exp.adapter}: its checkpoints cannot be resumed here")
        return {"run_id": run.id, "run": f"{run.experiment}/{run.number}", "checkpoint": name}

    async def resolve_checkpoint(self, ref: str, *, experiment: str | int) -> tuple[Run, str]:
        """The run and checkpoint that ``ref`` names: ``RUN:NAME`` (RUN as ``get_run`` takes
        it: a run id or EXPERIMENT/NUMBER), or a bare ``NAME``: the latest run of
        ``experiment`` that has it. NAME is a file name in that run's checkpoints directory,
        never a path: traversal, absolute paths and links leading out are refused."""
        run_ref, sep, name = ref.rpartition(":")
        try:
            check_name(name)
        except UnsafePathError as exc:
            raise UnsafePathError(f"checkpoint {ref!r} refused: {exc} (name a checkpoint of"
                                  " an earlier run: RUN:NAME, e.g. exp/3:last.pt, or NAME)"
                                  ) from None
        if sep:
            run = await self.get_run(run_ref)
            path = safe_child(checkpoints_dir(self.settings, run.id), name)  # type: ignore[attr-defined]
            if not path.is_file():
                have = ", ".join(c["name"] for c in await self.list_checkpoints(run.id))
                raise NotFoundError(f"run {run.label} has no checkpoint {name!r}"
                                    f" (available: {have or 'none'})")
            return run, name
        runs = await self.list_runs(experiment)  # newest first
        for run in runs:
            if self._checkpoint_file(run.id, name):
                return run, name
        have = []
        for run in runs:
            names = [c["name"] for c in await self.list_checkpoints(run.id)]
            if names:
                have.append(f"{run.experiment}/{run.number}: {', '.join(names)}")
        exp = await self.get_experiment(experiment)  # type: ignore[attr-defined]
        if not runs:
            raise NotFoundError(f"{exp.name} has no earlier run to resume from")
        raise NotFoundError(f"no run of {exp.name} has a checkpoint {name!r} ("
                            + ("; ".join(have[:5]) or "none has any checkpoint") + ")")

    def _checkpoint_file(self, run_id: int, name: str) -> bool:
        try:
            path = safe_child(checkpoints_dir(self.settings, run_id), name)  # type: ignore[attr-defined]
        except UnsafePathError:  # a link that leads out of the run
            return False
        return path.is_file()

    async def list_runs(self, exp_ref: str | int | None = None) -> list[Run]:
        gone = await self.settle_gone()  # type: ignore[attr-defined]
        if exp_ref is None:
            rows = await self.store.fetchall(_RUN_SQL + " ORDER BY r.id DESC")
        else:
            exp = await self.get_experiment(exp_ref)  # type: ignore[attr-defined]
            rows = await self.store.fetchall(
                _RUN_SQL + " WHERE r.experiment_id=? ORDER BY r.number DESC", (exp.id,))
        return [_run(r, self.settings, gone) for r in rows]  # type: ignore[attr-defined]

    async def get_run(self, ref: int | str) -> Run:
        """A run by id, or "experiment/number" / "experiment:number"."""
        gone = await self.settle_gone()  # type: ignore[attr-defined]
        if isinstance(ref, str) and not ref.isdigit():
            for sep in ("/", ":", "#"):
                if sep in ref:
                    name, _, num = ref.rpartition(sep)
                    if num.isdigit():
                        row = await self.store.fetchone(
                            _RUN_SQL + " WHERE e.name=? AND r.number=?", (name, int(num)))
                        if row:
                            return _run(row, self.settings, gone)  # type: ignore[attr-defined]
            raise NotFoundError(f"no run {ref!r} (use a run id or EXPERIMENT/NUMBER)")
        row = await self.store.fetchone(_RUN_SQL + " WHERE r.id=?", (int(ref),))
        if row is None:
            raise NotFoundError(f"no run {ref!r}")
        return _run(row, self.settings, gone)  # type: ignore[attr-defined]

    async def cancel_run(self, ref: int | str) -> int | None:
        run = await self.get_run(ref)
        job_id = await self.store.scalar(
            "SELECT id FROM jobs WHERE run_id=? AND status IN ('queued','running')"
            " ORDER BY id DESC LIMIT 1", (run.id,))
        if job_id is None:
            return None
        await self.cancel_job(job_id)  # type: ignore[attr-defined]
        return int(job_id)

    # ------------------------------------------------------------------ metrics

    async def metric_keys(self, run_id: int) -> list[str]:
        rows = await self.store.fetchall(
            "SELECT key FROM metric_keys WHERE run_id=? ORDER BY key", (run_id,))
        return [r[0] for r in rows]

    async def read_metrics_since(self, run_id: int, cursor: int = 0,
                                 keys: list[str] | None = None, limit: int = 200_000) -> MetricBatch:
        """Points newer than ``cursor`` (a metric row id); the new cursor is in the result."""
        sql = ("SELECT m.id, k.key, m.step, m.value, m.wall, m.epoch FROM metrics m"
               " JOIN metric_keys k ON k.id = m.key_id WHERE k.run_id=? AND m.id > ?")
        params: list[Any] = [run_id, cursor]
        if keys:
            sql += f" AND k.key IN ({','.join('?' * len(keys))})"
            params += keys
        sql += " ORDER BY m.id LIMIT ?"
        params.append(limit)
        batch = MetricBatch(cursor=cursor)
        for mid, key, step, value, wall, epoch in await self.store.fetchall(sql, params):
            batch.points.setdefault(key, []).append((step, decode_value(value), wall, epoch))
            batch.cursor = mid
        return batch

    async def read_metric(self, run_id: int, key: str, *, max_points: int = 2000,
                          x: str = "step", last_n_steps: int | None = None) -> MetricPoints:
        """At most ``max_points`` points of one key. Beyond that, the min and max of each
        bucket are kept (extremes survive). NaN points are left out of chart data (the
        summary counts them). x is step, epoch or wall (seconds since the first point).
        Series are cached in memory and extended from the metric cursor, so redrawing a live
        million-point metric reads only the new rows."""
        if x not in ("step", "epoch", "wall"):
            raise ValueError(f"x must be step, epoch or wall, got {x!r}")
        kid = await self.store.scalar(
            "SELECT id FROM metric_keys WHERE run_id=? AND key=?", (run_id, key))
        if kid is None:
            return MetricPoints(key=key, x=[], y=[])
        from .series import Series

        cache = self.__dict__.setdefault("_series", {})
        series = cache.get(kid)
        if series is None:
            series = cache[kid] = Series()
        while True:
            rows = await self.store.fetchall(
                "SELECT id, step, value, wall, epoch FROM metrics WHERE key_id=? AND id > ?"
                " ORDER BY id LIMIT 500000", (kid, series.last_id))
            series.extend(rows)
            if len(rows) < 500000:
                break
        xs, ys, total, down = series.points(max_points, x, last_n_steps)
        return MetricPoints(key=key, x=xs, y=ys, total=total, downsampled=down)

    async def all_metrics(self, run_id: int, key: str) -> list[tuple[int, float]]:
        rows = await self.store.fetchall(
            "SELECT m.step, m.value FROM metrics m JOIN metric_keys k ON k.id=m.key_id"
            " WHERE k.run_id=? AND k.key=? ORDER BY m.step, m.id", (run_id, key))
        return [(s, decode_value(v)) for s, v in rows]

    async def run_summary(self, run_id: int) -> dict[str, dict[str, Any]]:
        """The stored end-of-run summary, or a live one computed now for a running run."""
        return await self._summary(await self.get_run(run_id))

    async def _summary(self, run: Run) -> dict[str, dict[str, Any]]:
        if run.summary is not None:
            return run.summary
        import asyncio

        from .records import summarize_run
        from .schema import connect_sync

        def compute() -> dict:
            conn = connect_sync(self.settings.db_path)  # type: ignore[attr-defined]
            try:
                return summarize_run(conn, run.id)
            finally:
                conn.close()

        return await asyncio.to_thread(compute)

    # ------------------------------------------------------------------ files

    def run_dir(self, run_id: int) -> Path:
        return self.settings.run_dir(run_id)  # type: ignore[attr-defined]

    async def list_checkpoints(self, run_id: int) -> list[dict[str, Any]]:
        await self.get_run(run_id)
        return list_checkpoints(checkpoints_dir(self.settings, run_id))  # type: ignore[attr-defined]

    async def delete_checkpoint(self, run_id: int, name: str) -> None:
        await self.get_run(run_id)
        delete_checkpoint(checkpoints_dir(self.settings, run_id), name)  # type: ignore[attr-defined]

    async def log_path(self, run_id: int) -> Path | None:
        job_id = await self.store.scalar(
            "SELECT MAX(id) FROM jobs WHERE run_id=? AND type='train'", (run_id,))
        if job_id is None:
            return None
        return job_log_path(self.settings, job_id, run_id)  # type: ignore[attr-defined]

    async def log_tail(self, run_id: int | None = None, lines: int = 200,
                       job_id: int | None = None) -> list[str]:
        if job_id is not None:
            rid = await self.store.scalar("SELECT run_id FROM jobs WHERE id=?", (job_id,))
            path = job_log_path(self.settings, job_id, rid)  # type: ignore[attr-defined]
        else:
            path = await self.log_path(int(run_id or 0))
        if path is None or not path.exists():
            return []
        return tail_lines(path, lines)


def tail_lines(path: Path, lines: int) -> list[str]:
    with open(path, "rb") as fh:
        fh.seek(0, 2)
        size = fh.tell()
        block = min(size, max(4096, lines * 200))
        fh.seek(size - block)
        data = fh.read().decode("utf-8", errors="replace")
    out = data.splitlines()
    return out[-lines:]
