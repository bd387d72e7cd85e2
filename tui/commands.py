"""Command palette (ctrl+p): areas, theme, compare the selection, and one command per
experiment, latest run (eval / index where the adapter can), study and active job."""

from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

from engine.jobs import FINAL

from .areas import AREAS

RUN_JOBS = (("evaluate", "Start eval of", "eval job"), ("index", "Build index of",
                                                        "index build job"))


def _supports(app, adapter: str, capability: str) -> bool:
    try:
        return app.engine.adapter_class(adapter).supports(capability)
    except Exception:  # an adapter that is not installed here offers nothing
        return False


class LabdeckCommands(Provider):
    async def startup(self) -> None:
        app = self.app
        cache = app.palette_cache  # type: ignore[attr-defined]
        try:
            cache["experiments"] = await app.engine.list_experiments()  # type: ignore[attr-defined]
            cache["jobs"] = await app.engine.list_jobs(limit=100)  # type: ignore[attr-defined]
            cache["studies"] = await app.engine.list_studies()  # type: ignore[attr-defined]
        except Exception:  # the palette must open even if the database is busy
            pass

    def _commands(self) -> list[tuple[str, object, str]]:
        app = self.app
        cache = app.palette_cache  # type: ignore[attr-defined]
        out: list[tuple[str, object, str]] = []
        for a in AREAS:
            out.append((f"Open {a.title}", partial(app.run_action, f"area('{a.mode}')"),
                        f"switch to the {a.mode} area ({a.key})"))
        out.append(("Toggle dark/light theme", app.action_toggle_theme, "ctrl+t"))
        out.append(("Help: list all keys", app.action_help, "?"))
        out.append(("New experiment", partial(self._on_experiments, "new", None), "n"))
        out.append(("New study", partial(self._on_studies, None), "from an experiment"))
        selected = cache.get("selected", [])
        if len(selected) >= 2:
            out.append(("Compare selected experiments", partial(self._compare, list(selected)),
                        ", ".join(selected)))
        for exp in cache.get("experiments", []):
            out.append((f"Launch run of {exp.name}", partial(self._on_experiments, "launch",
                                                            exp.name), exp.adapter))
            out.append((f"Open experiment {exp.name}", partial(self._on_experiments, "open",
                                                              exp.name), exp.adapter))
            if not exp.last_run_id:
                continue
            label = f"{exp.name} › run {exp.last_run_number}"
            out.append((f"Open latest run of {exp.name}",
                        partial(self._open_run, exp.last_run_id), label))
            if exp.last_status == "completed":
                for capability, verb, what in RUN_JOBS:
                    if _supports(app, exp.adapter, capability):
                        out.append((f"{verb} {label}", partial(
                            self._run_job, exp.last_run_id, capability), f"queue an {what}"))
        for study in cache.get("studies", []):
            out.append((f"Open study {study.name}", partial(self._on_studies, study.name),
                        f"{study.status}, {study.adapter}"))
        for job in cache.get("jobs", []):
            if job.status not in FINAL:
                out.append((f"Cancel job {job.id}", partial(self._cancel_job, job.id),
                            f"{job.type} {job.target}"))
        return out

    async def _on_experiments(self, what: str, name: str | None) -> None:
        from .screens.experiments import ExperimentsScreen

        await self.app.run_action("area('experiments')")
        screen = self.app.screen
        if isinstance(screen, ExperimentsScreen):
            screen.palette_action(what, name)

    async def _on_studies(self, name: str | None) -> None:
        from .screens.studies import StudiesScreen

        await self.app.run_action("area('studies')")
        screen = self.app.screen
        if isinstance(screen, StudiesScreen):
            if name is None:
                screen.action_new()
            else:
                screen.open_study(name)

    async def _compare(self, refs: list[str]) -> None:
        await self.app.open_compare(refs)  # type: ignore[attr-defined]

    def _open_run(self, run_id: int) -> None:
        from .screens.run_detail import RunDetailScreen

        self.app.push_screen(RunDetailScreen(run_id))

    async def _run_job(self, run_id: int, capability: str) -> None:
        engine = self.app.engine  # type: ignore[attr-defined]
        try:
            if capability == "evaluate":
                job = await engine.start_eval(run_id)
            else:
                job = await engine.start_index_build(run_id)
        except Exception as exc:  # noqa: BLE001 - surfaced, never a crash
            self.app.notify(f"{type(exc).__name__}: {exc}", title="error", severity="error")
            return
        self.app.notify(f"queued {capability} job {job} (default checkpoint)")

    def _cancel_job(self, job_id: int) -> None:
        from .screens.job_actions import confirm_cancel_job

        confirm_cancel_job(self.app, job_id)

    async def discover(self) -> Hits:
        for name, cb, help_text in self._commands():
            yield DiscoveryHit(name, cb, help=help_text)  # type: ignore[arg-type]

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, cb, help_text in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), cb, help=help_text)  # type: ignore[arg-type]
