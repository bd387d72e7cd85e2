"""Command palette (ctrl+p): areas, theme, and one command per experiment / active job."""

from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

from engine.jobs import FINAL


class LabdeckCommands(Provider):
    async def startup(self) -> None:
        app = self.app
        try:
            app.palette_cache["experiments"] = await app.engine.list_experiments()  # type: ignore[attr-defined]
            app.palette_cache["jobs"] = await app.engine.list_jobs(limit=100)  # type: ignore[attr-defined]
        except Exception:  # the palette must open even if the database is busy
            pass

    def _commands(self) -> list[tuple[str, object, str]]:
        app = self.app
        out: list[tuple[str, object, str]] = []
        for area in ("experiments", "compare", "jobs", "search", "studies"):
            out.append((f"Go to {area}", partial(app.run_action, f"area('{area}')"),
                        f"switch to the {area} area"))
        out.append(("Toggle dark/light theme", app.action_toggle_theme, "ctrl+t"))
        out.append(("Help: list all keys", app.action_help, "?"))
        out.append(("New experiment", partial(self._on_experiments, "new", None), "n"))
        for exp in app.palette_cache.get("experiments", []):  # type: ignore[attr-defined]
            out.append((f"Launch run of {exp.name}", partial(self._on_experiments, "launch",
                                                            exp.name), exp.adapter))
            out.append((f"Open experiment {exp.name}", partial(self._on_experiments, "open",
                                                              exp.name), exp.adapter))
            if exp.last_run_id:
                out.append((f"Open latest run of {exp.name}",
                            partial(self._open_run, exp.last_run_id), "run detail"))
        for job in app.palette_cache.get("jobs", []):  # type: ignore[attr-defined]
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

    def _open_run(self, run_id: int) -> None:
        from .screens.run_detail import RunDetailScreen

        self.app.push_screen(RunDetailScreen(run_id))

    def _cancel_job(self, job_id: int) -> None:
        from .screens.jobs import confirm_cancel_job

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
