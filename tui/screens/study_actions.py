"""What can be done to a study from more than one screen: open the study form on an
experiment from any area, and start / cancel / promote for the list and the detail screen."""

from __future__ import annotations

from textual import work

from .confirm import ConfirmModal


def new_study_from(app, experiment: str) -> None:
    """Open the study form on ``experiment`` from any area; once created, show the study in
    the Studies area (``s`` starts it)."""
    from .study_form import StudyForm

    async def created(name: str | None) -> None:
        if name:
            await app.action_area("studies")
            app.screen.open_study(name)

    app.push_screen(StudyForm(experiment), created)


class StudyActions:
    """Start / cancel / promote for a screen that knows its current study."""

    def current_study(self) -> str | None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _need_study(self) -> str | None:
        name = self.current_study()
        if name is None:
            self.notify("no study selected (n creates one)", severity="warning")  # type: ignore[attr-defined]
        return name

    @work(group="study-action", exit_on_error=False)
    async def action_start(self) -> None:
        name = self._need_study()
        if name:
            job_id = await self.engine.start_study(name)  # type: ignore[attr-defined]
            self.notify(f"study {name} queued (job {job_id})")  # type: ignore[attr-defined]
            self.reload()  # type: ignore[attr-defined]

    def action_cancel(self) -> None:
        name = self._need_study()
        if not name:
            return

        def answered(ok: bool | None) -> None:
            if ok:
                self._cancel(name)

        self.app.push_screen(  # type: ignore[attr-defined]
            ConfirmModal(f"Cancel study {name}? Finished trials are kept; s resumes it.",
                         "Cancel study"), answered)

    @work(group="study-action", exit_on_error=False)
    async def _cancel(self, name: str) -> None:
        study = await self.engine.cancel_study(name)  # type: ignore[attr-defined]
        self.notify(f"study {name}: cancel requested ({study.status})")  # type: ignore[attr-defined]
        self.reload()  # type: ignore[attr-defined]

    @work(group="study-action", exit_on_error=False)
    async def action_promote(self) -> None:
        """A new experiment from the best trial's params, opened ready to launch (r) in the
        Experiments area."""
        from .experiment_detail import ExperimentDetailScreen

        name = self._need_study()
        if not name:
            return
        exp = await self.engine.promote_best(name)  # type: ignore[attr-defined]
        self.notify(f"created experiment {exp.name} ({exp.origin}); r launches it")  # type: ignore[attr-defined]
        # an experiment lives in the Experiments area: open it on that area's stack, so the
        # header and esc agree with where it is (the Studies stack stays as it was)
        app = self.app  # type: ignore[attr-defined]
        await app.action_area("experiments")
        await app.push_screen(ExperimentDetailScreen(exp.name))
