"""One study: progress line, objective chart, trial table, best params and parameter
importance. Side by side on wide terminals; tabs below 100x34 (80x24 stays usable)."""

from __future__ import annotations

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import DataTable, Footer, Label, Static, TabbedContent, TabPane

from ..run_status import arrow
from ..widgets.header import LabdeckHeader
from ..widgets.study_chart import ObjectiveChart
from .base import AreaScreen, mark_sorted
from .study_actions import StudyActions
from .study_format import (
    ACTIVE,
    best_params_text,
    best_so_far,
    importance_bars,
    progress_line,
    searched_params,
    trial_cells,
    trial_sort_key,
    trial_time_text,
)

WIDE = (100, 34)  # at least this many columns and rows for side-by-side panes
FIXED_COLUMNS = ("★", "#", "state", "value")
TAIL_COLUMNS = ("duration",)
PANES = ("tab-trials", "tab-chart", "tab-best", "tab-importance")

# Below this many complete trials an importance is mostly noise: PED-ANOVA compares the top
# 10% of trials with the rest (one or two trials), a rank correlation on a handful of points
# swings with each new one.
RELIABLE_IMPORTANCE_TRIALS = 20


def importance_caveat(complete: int) -> Text | None:
    """A warning to print with an importance computed from ``complete`` trials, or None when
    there are enough of them to read it as a ranking."""
    if complete >= RELIABLE_IMPORTANCE_TRIALS:
        return None
    return Text(f"⚠ from only {complete} complete trial{'s' if complete != 1 else ''}:"
                f" unreliable below ~{RELIABLE_IMPORTANCE_TRIALS}; read it as a hint,"
                " not a ranking", "yellow")


class StudyDetailScreen(StudyActions, AreaScreen):
    AREA = "studies"
    CSS_PATH = "studies.tcss"
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back", id="study.back"),
        Binding("s", "start", "Start/resume", id="study.start"),
        Binding("x", "cancel", "Cancel", id="study.cancel"),
        Binding("p", "promote", "Best→exp", id="study.promote"),
        Binding("o", "sort", "Sort", id="study.sort"),
        Binding("O", "reverse", "Reverse", id="study.reverse", show=False),
        *[Binding(str(i), f"pane({i})", f"Pane {i}", id=f"study.pane_{i}", show=False)
          for i in range(1, 5)],
    ]

    def __init__(self, name: str) -> None:
        super().__init__()
        self.study_name = name
        self.study = None
        self.trials: list = []
        self.importance: dict[str, float] | None = None
        self.sort_column = "#"
        self.sort_reverse = False
        self.narrow: bool | None = None
        self.loaded = False

    def on_mount(self) -> None:
        self.set_interval(1.0, self._tick)

    def _tick(self) -> None:
        """Once a second while the study runs: the progress line's ETA and the running trials'
        durations move with the clock (no engine call; data changes reload as usual)."""
        study = self.study
        if study is None or study.status not in ACTIVE or not self.is_current:
            return
        self.query_one("#study-progress", Label).update(progress_line(study, self.trials))
        for table in self.query("#trials").results(DataTable):
            for t in self.trials:
                if t.state == "running":
                    try:
                        table.update_cell(str(t.number), "duration", trial_time_text(t))
                    except Exception:  # the row or column is being rebuilt
                        pass

    def current_study(self) -> str | None:
        return self.study_name

    def compose(self) -> ComposeResult:
        yield LabdeckHeader(self.AREA)
        yield Label(self.study_name, id="study-progress", classes="title")
        yield Vertical(id="study-body")
        yield Footer()

    # ------------------------------------------------------------------ layout

    def on_resize(self) -> None:
        narrow = self.size.width < WIDE[0] or self.size.height < WIDE[1]
        if narrow != self.narrow:
            self.narrow = narrow
            self._rebuild()

    @work(exclusive=True, group="study-layout", exit_on_error=False)
    async def _rebuild(self) -> None:
        body = self.query_one("#study-body", Vertical)
        await body.remove_children()
        chart = ObjectiveChart(id="study-chart")
        table = DataTable(id="trials", cursor_type="row", zebra_stripes=True)
        best = VerticalScroll(Static("", id="best-params"), id="best-pane")
        imp = VerticalScroll(Static("", id="importance"), id="importance-pane")
        if self.narrow:
            tabs = TabbedContent(id="study-tabs")
            await body.mount(tabs)
            for title, pane_id, pane in (("1 trials", "tab-trials", table),
                                         ("2 chart", "tab-chart", chart),
                                         ("3 best params", "tab-best", best),
                                         ("4 importance", "tab-importance", imp)):
                await tabs.add_pane(TabPane(title, pane, id=pane_id))
        else:
            await body.mount(Horizontal(Vertical(chart, table, id="study-main"),
                                        Vertical(best, imp, id="study-side"), id="study-wide"))
            best.border_title = "best trial"
            imp.border_title = "importance"
        body.set_class(not self.narrow, "wide")
        table.focus()
        self._paint()

    # ------------------------------------------------------------------ loading

    def reload(self) -> None:
        self._load()

    @work(exclusive=True, group="study", exit_on_error=False)
    async def _load(self) -> None:
        engine = self.engine
        self.study = study = await engine.get_study(self.study_name)
        self.trials = await engine.study_trials(self.study_name)
        if study.importance is not None:
            self.importance = study.importance
        elif (study.status == "completed" and self.importance is None
              and study.counts.get("complete", 0) >= 2):
            self.importance = await engine.importance(self.study_name)
        self._paint()
        self.loaded = True

    def _paint(self) -> None:
        study = self.study
        if study is None:
            return
        self.query_one("#study-progress", Label).update(progress_line(study, self.trials))
        for chart in self.query(ObjectiveChart):
            st = study.settings
            label = f"{st.get('objective')} {arrow(st.get('direction', ''))}"
            chart.show(self.trials, best_so_far(self.trials, st.get("direction", "minimize")),
                       label)
        for table in self.query("#trials").results(DataTable):
            self._fill_table(table)
        for best in self.query("#best-params").results(Static):
            best.update(best_params_text(study))
        for imp in self.query("#importance").results(Static):
            imp.update(self._importance_text())

    def _importance_text(self) -> Text:
        if self.importance is not None:
            bars = importance_bars(self.importance, width=14 if self.narrow is False else 30)
            complete = sum(1 for t in self.trials if t.state == "complete")
            caveat = importance_caveat(complete) if self.importance else None
            return Text("\n").join([caveat, bars]) if caveat else bars
        return Text("parameter importance appears when the study completes", "dim")

    def _fill_table(self, table: DataTable) -> None:
        study = self.study
        params = searched_params(study)
        columns = [*FIXED_COLUMNS, *params, *TAIL_COLUMNS]
        if [str(c.value) for c in table.columns] != columns:
            table.clear(columns=True)
            for col in columns:
                table.add_column(col, key=col)
        row = table.cursor_row
        table.clear()
        trials = sorted(self.trials, key=trial_sort_key(self.sort_column,
                                                        study.settings.get("direction", "")),
                        reverse=self.sort_reverse)
        for t in trials:
            table.add_row(*trial_cells(t, params, study.best_trial), key=str(t.number))
        mark_sorted(table, columns, self.sort_column, self.sort_reverse)
        if trials:
            table.move_cursor(row=min(row, len(trials) - 1))

    # ------------------------------------------------------------------ events and actions

    def sortable(self) -> list[str]:
        if self.study is None:
            return ["#"]
        return ["#", "state", "value", *searched_params(self.study), "duration"]

    def action_sort(self) -> None:
        cols = self.sortable()
        i = cols.index(self.sort_column) if self.sort_column in cols else -1
        self.sort_column = cols[(i + 1) % len(cols)]
        self.sort_reverse = False
        self._paint()

    def action_pane(self, index: int) -> None:
        """At 80x24 the panes are tabs: 1-4 switch between them."""
        tabs = self.query(TabbedContent)
        if tabs:
            tabs.first().active = PANES[index - 1]

    def action_reverse(self) -> None:
        self.sort_reverse = not self.sort_reverse
        self._paint()

    @on(DataTable.HeaderSelected, "#trials")
    def _header(self, event: DataTable.HeaderSelected) -> None:
        col = str(event.column_key.value)
        if col in self.sortable():
            self.sort_reverse = not self.sort_reverse if col == self.sort_column else False
            self.sort_column = col
            self._paint()

    @on(DataTable.RowSelected, "#trials")
    def _open_trial(self, event: DataTable.RowSelected) -> None:
        from .run_detail import RunDetailScreen

        number = int(str(event.row_key.value))
        trial = next((t for t in self.trials if t.number == number), None)
        if trial is None or trial.run_id is None:
            self.notify(f"trial {number} has no run here", severity="warning")
            return
        self.app.push_screen(RunDetailScreen(trial.run_id))
