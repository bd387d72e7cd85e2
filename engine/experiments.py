"""Experiments: create (validated by the adapter's schema), edit, duplicate, delete, list."""

from __future__ import annotations

import json
from typing import Any

from adapters.base import ConfigError

from .models import Experiment, dumps, loads
from .records import now
from .registry import get_adapter_class
from .store import Store


class NotFoundError(LookupError):
    pass


class ConflictError(ValueError):
    pass


_EXP_LIST_SQL = """
SELECT e.id, e.name, e.adapter, e.config, e.objective, e.direction, e.tags, e.notes, e.origin,
       e.created, e.updated,
       (SELECT COUNT(*) FROM runs r WHERE r.experiment_id = e.id) AS nruns,
       lr.id, lr.number, lr.status, j.progress, j.message, lr.error,
       CASE WHEN e.direction = 'minimize' THEN (SELECT MIN(m.value) {points})
            ELSE (SELECT MAX(m.value) {points}) END,
       CASE WHEN e.direction = 'minimize'
            THEN (SELECT r.number {points} ORDER BY m.value, r.number LIMIT 1)
            ELSE (SELECT r.number {points} ORDER BY m.value DESC, r.number LIMIT 1) END
FROM experiments e
LEFT JOIN runs lr ON lr.id = (SELECT MAX(id) FROM runs WHERE experiment_id = e.id)
LEFT JOIN jobs j ON j.id = (SELECT MAX(id) FROM jobs WHERE run_id = lr.id AND type = 'train')
""".format(points="FROM metrics m JOIN metric_keys k ON k.id = m.key_id JOIN runs r"
           " ON r.id = k.run_id WHERE r.experiment_id = e.id AND k.key = e.objective"
           " AND m.value IS NOT NULL")


def _exp_from_row(row: tuple) -> Experiment:
    return Experiment(
        id=row[0], name=row[1], adapter=row[2], config=loads(row[3], {}), objective=row[4],
        direction=row[5], tags=json.loads(row[6] or "[]"), notes=row[7], origin=row[8],
        created=row[9], updated=row[10], runs=row[11], last_run_id=row[12],
        last_run_number=row[13], last_status=row[14], last_progress=row[15],
        last_message=row[16] or "", last_error=row[17], best_value=row[18],
        best_run_number=row[19])


class ExperimentsMixin:
    store: Store

    async def list_experiments(self) -> list[Experiment]:
        await self.settle_gone()  # type: ignore[attr-defined] - a last run's process may be gone
        rows = await self.store.fetchall(_EXP_LIST_SQL + " ORDER BY e.updated DESC")
        return [_exp_from_row(r) for r in rows]

    async def get_experiment(self, ref: str | int) -> Experiment:
        if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
            row = await self.store.fetchone(_EXP_LIST_SQL + " WHERE e.id=? OR e.name=?",
                                            (int(ref), str(ref)))
        else:
            row = await self.store.fetchone(_EXP_LIST_SQL + " WHERE e.name=?", (ref,))
        if row is None:
            raise NotFoundError(f"no experiment {ref!r}")
        return _exp_from_row(row)

    def validate_experiment(self, adapter: str, config: dict[str, Any] | None,
                            objective: str | None = None,
                            direction: str | None = None) -> tuple[dict, str | None, str | None]:
        cls = get_adapter_class(adapter)
        validated = cls.validate_config(config or {})
        if objective is None and cls.default_objective:
            objective, default_dir = cls.default_objective
            direction = direction or default_dir
        if direction is not None and direction not in ("minimize", "maximize"):
            raise ConfigError({"direction": f"must be minimize or maximize, got {direction!r}"})
        if objective and direction is None:
            from .directions import direction_for

            direction = direction_for(objective)
        return validated, objective, direction

    async def create_experiment(self, name: str, adapter: str,
                                config: dict[str, Any] | None = None, *,
                                objective: str | None = None, direction: str | None = None,
                                tags: list[str] | None = None, notes: str = "",
                                origin: str | None = None) -> Experiment:
        name = (name or "").strip()
        if not name:
            raise ConfigError({"name": "must not be empty"})
        validated, objective, direction = self.validate_experiment(
            adapter, config, objective, direction)
        t = now()
        async with self.store.write() as db:
            if await self.store.scalar("SELECT 1 FROM experiments WHERE name=?", (name,)):
                raise ConflictError(f"an experiment named {name!r} already exists")
            await db.execute(
                "INSERT INTO experiments(name, adapter, config, objective, direction, tags,"
                " notes, origin, created, updated) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (name, adapter, dumps(validated), objective, direction,
                 json.dumps(list(tags or [])), notes, origin, t, t))
        return await self.get_experiment(name)

    async def update_experiment(self, ref: str | int, *, name: str | None = None,
                                config: dict[str, Any] | None = None,
                                objective: str | None = None, direction: str | None = None,
                                tags: list[str] | None = None,
                                notes: str | None = None) -> Experiment:
        exp = await self.get_experiment(ref)
        new_cfg = exp.config if config is None else config
        validated, objective, direction = self.validate_experiment(
            exp.adapter, new_cfg, objective or exp.objective, direction or exp.direction)
        new_name = (name or exp.name).strip()
        async with self.store.write() as db:
            if new_name != exp.name and await self.store.scalar(
                    "SELECT 1 FROM experiments WHERE name=?", (new_name,)):
                raise ConflictError(f"an experiment named {new_name!r} already exists")
            await db.execute(
                "UPDATE experiments SET name=?, config=?, objective=?, direction=?, tags=?,"
                " notes=?, updated=? WHERE id=?",
                (new_name, dumps(validated), objective, direction,
                 json.dumps(list(exp.tags if tags is None else tags)),
                 exp.notes if notes is None else notes, now(), exp.id))
        return await self.get_experiment(exp.id)

    async def duplicate_experiment(self, ref: str | int, new_name: str | None = None) -> Experiment:
        exp = await self.get_experiment(ref)
        if not new_name:
            n = 2
            while await self.store.scalar("SELECT 1 FROM experiments WHERE name=?",
                                          (f"{exp.name}-{n}",)):
                n += 1
            new_name = f"{exp.name}-{n}"
        return await self.create_experiment(
            new_name, exp.adapter, exp.config, objective=exp.objective, direction=exp.direction,
            tags=exp.tags, notes=exp.notes, origin=f"duplicate of {exp.name}")

    async def delete_experiment(self, ref: str | int) -> None:
        exp = await self.get_experiment(ref)
        active = await self.store.scalar(
            "SELECT COUNT(*) FROM jobs j JOIN runs r ON r.id=j.run_id WHERE r.experiment_id=?"
            " AND j.status IN ('queued','running')", (exp.id,))
        if active:
            raise ConflictError(f"experiment {exp.name!r} has {active} active job(s); cancel first")
        run_ids = [r[0] for r in await self.store.fetchall(
            "SELECT id FROM runs WHERE experiment_id=?", (exp.id,))]
        async with self.store.write() as db:
            await db.execute("DELETE FROM experiments WHERE id=?", (exp.id,))
        import shutil

        for rid in run_ids:
            shutil.rmtree(self.settings.run_dir(rid), ignore_errors=True)
