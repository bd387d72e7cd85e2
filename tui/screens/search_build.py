"""The Search area's jobs on the chosen checkpoint: an eval, and an index build whose
progress the screen follows (bar and status line) until it ends, then reloads."""

from __future__ import annotations

import asyncio

from textual import work
from textual.widgets import ProgressBar

from engine.jobs import FINAL

from .search_modals import Source


class SearchJobs:
    """Mixed into SearchScreen: ``v`` queues an eval, ``b`` builds the index and follows it."""

    source: Source | None
    build_job: int | None

    def action_eval(self) -> None:
        if self.source is None:
            self.notify("no checkpoint to evaluate", severity="warning")
            return
        self._eval(self.source)

    @work(group="search-action", exit_on_error=False)
    async def _eval(self, src: Source) -> None:
        job = await self.engine.start_eval(src.run_id, src.checkpoint)
        self.notify(f"queued eval job {job} ({src.label} › {src.checkpoint}); results land in"
                    " the evals tab (e)")

    def action_build(self) -> None:
        if self.source is None:
            self.notify("no checkpoint to index", severity="warning")
        elif self.build_job:
            self.notify(f"index build job {self.build_job} is already running")
        else:
            self._build(self.source)

    @work(exclusive=True, group="search-build", exit_on_error=False)
    async def _build(self, src: Source) -> None:
        bar = self.query_one("#search-build-bar", ProgressBar)
        self.build_job = job_id = await self.engine.start_index_build(src.run_id, src.checkpoint)
        bar.update(progress=0)
        bar.display = True
        self._source_line()
        self.refresh_bindings()
        try:
            while True:
                job = await self.engine.get_job(job_id)
                bar.update(progress=job.progress or 0.0)
                msg = job.message or ("waiting for the scheduler" if job.status == "queued"
                                      else job.status)
                self._set_status(f"building index (job {job_id}, {job.status}): {msg}")
                if job.status in FINAL:
                    break
                await asyncio.sleep(0.2)
        finally:
            self.build_job = None
            bar.display = False
        if job.status == "completed":
            # the app's toast tells the job's end; this line says what to do next
            self._set_status("index ready: / to type a query, n for a sample")
        else:
            self._set_status(f"index build {job.status}: {job.error or job.message}", error=True)
        self.reload()
