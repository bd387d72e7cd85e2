"""Cancelling a job, asked first: from the jobs list, a job's detail and the palette."""

from __future__ import annotations

from textual.app import App

from .confirm import ConfirmModal


def confirm_cancel_job(app: App, job_id: int) -> None:
    """Ask, then cancel; used by the jobs screens and the command palette."""

    async def cancel() -> None:
        job = await app.engine.cancel_job(job_id)  # type: ignore[attr-defined]
        app.notify(f"job {job.id}: {'cancel requested' if job.status == 'running' else job.status}")

    def answered(ok: bool | None) -> None:
        if ok:
            app.run_worker(cancel(), group="cancel", exit_on_error=False)

    app.push_screen(ConfirmModal(f"Cancel job {job_id}?", "Cancel job"), answered)
