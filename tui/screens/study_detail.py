"""One study: progress line, objective chart, trial table, best params, parameter importance
and parallel coordinates. Side by side on wide terminals (the parallel coordinates take the
chart's place on `5`); tabs below 100x34 (80x24 stays usable).

With 1,000 trials the objective views stay readable through two switches of the screen's:
`l` puts the objective on a log scale, `k` keeps only the best K trials (K cycling through
TOP_K) in the chart and the parallel coordinates alike."""

from __future__ import annotations

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import ActiveBinding, Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import (
    ContentSwitcher,
    DataTable,
    Footer,
    Label,
    Static,
    TabbedContent,
    TabPane,
)

from ..run_status import arrow
from ..widgets.header import LabdeckHeader
from ..widgets.parallel_coords import ParallelCoords
from ..widgets.study_chart import ObjectiveChart
from .base import AreaScreen, mark_sorted
from .study_actions import StudyActions
from .study_format import (
    ACTIVE,
    RELIABLE_IMPORTANCE_TRIALS,  # noqa: F401 - re-exported: tests and docs read it here
    best_params_text,
    best_so_far,
    best_trials,
    clip_best_line,
    importance_bars,
    importance_caveat,
    parallel_axes,
    parallel_lines,
    progress_line,
    searched_params,
    trial_cells,
    trial_sort_key,
    trial_time_text,
)

WIDE = (100, 34)  # at least this many columns and rows for side-by-side panes
FIXED_COLUMNS = ("★", "#", "state", "value")
TAIL_COLUMNS = ("duration",)
PANES = ("tab-trials", "tab-chart", "tab-best", "tab-importance", "tab-parallel")
TOP_K = (None, 10, 50, 100)  # None: every trial
# the parallel coordinates' keys: the footer shows them (first) while that view has focus;
# a plot's (log-y, top-K) come first while a plot has the screen
AXIS_KEYS = Binding.Group("axis", compact=True)
TRIAL_KEYS = Binding.Group("trial", compact=True)
PARALLEL_KEY_IDS = ("study.axis_left", "study.axis_right", "study.trial_up", "study.trial_down",
                    "study.open_picked")
PLOT_KEY_IDS = ("study.log_y", "study.top_k")

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
        Binding("l", "log_y", "Log-y", id="study.log_y"),
        Binding("k", "top_k", "Top-K", id="study.top_k"),
        *[Binding(str(i), f"pane({i})", f"Pane {i}", id=f"study.pane_{i}", show=False)
          for i in range(1, 5)],
        Binding("5", "pane(5)", "Parallel", id="study.pane_5"),
        Binding("left", "axis(-1)", "Axis to the left", id="study.axis_left", group=AXIS_KEYS),
        Binding("right", "axis(1)", "Axis to the right", id="study.axis_right",
                group=AXIS_KEYS),
        Binding("up", "trial(1)", "Trial above on the axis", id="study.trial_up",
                group=TRIAL_KEYS),
        Binding("down", "trial(-1)", "Trial below on the axis", id="study.trial_down",
                group=TRIAL_KEYS),
        Binding("enter", "open_picked", "Open run", id="study.open_picked"),
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
        self.log_y = False
        self.top_k: int | None = None
        self.plot_view = "study-chart"  # wide: what the chart's place shows
        self._table_shows: tuple | None = None  # what the trial table was last filled with

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
        self._table_shows = None
        chart = ObjectiveChart(id="study-chart")
        parallel = ParallelCoords(id="study-parallel")
        table = DataTable(id="trials", cursor_type="row", zebra_stripes=True)
        best = VerticalScroll(Static("", id="best-params"), id="best-pane")
        imp = VerticalScroll(Static("", id="importance"), id="importance-pane")
        if self.narrow:
            tabs = TabbedContent(id="study-tabs")
            await body.mount(tabs)
            for title, pane_id, pane in (("1 trials", "tab-trials", table),
                                         ("2 chart", "tab-chart", chart),
                                         ("3 best params", "tab-best", best),
                                         ("4 importance", "tab-importance", imp),
                                         ("5 parallel", "tab-parallel", parallel)):
                await tabs.add_pane(TabPane(title, pane, id=pane_id))
        else:
            plots = ContentSwitcher(chart, parallel, id="study-plots", initial=self.plot_view)
            await body.mount(Horizontal(Vertical(plots, table, id="study-main"),
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
        self._paint_views()
        for table in self.query("#trials").results(DataTable):
            self._fill_table(table)
        for best in self.query("#best-params").results(Static):
            best.update(best_params_text(study))
        for imp in self.query("#importance").results(Static):
            imp.update(self._importance_text())

    def _paint_views(self) -> None:
        """The chart and the parallel coordinates (what `l` and `k` change)."""
        study = self.study
        if study is None:
            return
        st = study.settings
        direction = st.get("direction", "minimize")
        ranked = best_trials(self.trials, direction)
        kept = ranked if self.top_k is None else ranked[:self.top_k]
        top = f"top {self.top_k} of {len(ranked):,}" if self.top_k is not None else ""
        for chart in self.query(ObjectiveChart):
            label = "  ".join(x for x in (f"{st.get('objective')} {arrow(direction)}", top,
                                          "log-y" if self.log_y else "") if x)
            line = best_so_far(self.trials, direction)
            if self.top_k is None:
                chart.show(self.trials, line, label, log_y=self.log_y)
            else:
                line = clip_best_line(line, kept[-1].value, direction) if kept else ([], [])
                chart.show(kept, line, label, log_y=self.log_y)
        for parallel in self.query(ParallelCoords):
            dropped = len(self.trials) - len(ranked)
            note = "  ".join(x for x in (top, "log-y" if self.log_y else "",
                                         f"({dropped} without a value left out)"
                                         if dropped else "") if x)
            parallel.show(parallel_axes(study, self.log_y), parallel_lines(study, kept),
                          study.best_trial if kept else None, note)

    def _importance_text(self) -> Text:
        if self.importance is not None:
            bars = importance_bars(self.importance, width=14 if self.narrow is False else 30)
            complete = sum(1 for t in self.trials if t.state == "complete")
            caveat = importance_caveat(complete) if self.importance else None
            return Text("\n").join([caveat, bars]) if caveat else bars
        return Text("parameter importance appears when the study completes", "dim")

    def _fill_table(self, table: DataTable) -> None:
        """Refill the trial table, unless what it shows did not change: a reload that brings
        the same trials costs nothing (refilling 1,000 rows took a second)."""
        study = self.study
        params = searched_params(study)
        columns = [*FIXED_COLUMNS, *params, *TAIL_COLUMNS]
        shown = (tuple(columns), self.sort_column, self.sort_reverse,
                 study.best_trial,
                 tuple((t.number, t.state, t.value, t.started, t.finished,
                        t.intermediate[-1] if t.intermediate else None)
                       for t in self.trials))
        if shown == self._table_shows:
            return
        self._table_shows = shown
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
        """At 80x24 the panes are tabs: 1-5 switch between them. Side by side, 5 swaps the
        chart for the parallel coordinates and back, 2 brings the chart back."""
        tabs = self.query(TabbedContent)
        if tabs:
            if tabs.first().query(f"#{PANES[index - 1]}"):  # not while the tabs are built
                tabs.first().active = PANES[index - 1]
            return
        if index == 5:
            self._show_plot("study-chart" if self.plot_view == "study-parallel"
                            else "study-parallel")
        elif index == 2:
            self._show_plot("study-chart")

    def _show_plot(self, view: str) -> None:
        self.plot_view = view
        for plots in self.query("#study-plots").results(ContentSwitcher):
            plots.current = view
            target = "#study-parallel" if view == "study-parallel" else "#trials"
            self.query_one(target).focus()

    @on(TabbedContent.TabActivated, "#study-tabs")
    def _tab_shown(self, event: TabbedContent.TabActivated) -> None:
        """The parallel coordinates take the keys while their tab shows."""
        if event.pane.id == "tab-parallel":
            self.query_one(ParallelCoords).focus()
        elif isinstance(self.focused, ParallelCoords):
            self.query_one("#trials").focus()
        self.refresh_bindings()  # the footer puts a plot's keys first

    # ------------------------------------------------------------------ the objective views

    def action_log_y(self) -> None:
        self.log_y = not self.log_y
        self._paint_views()

    def action_top_k(self) -> None:
        self.top_k = TOP_K[(TOP_K.index(self.top_k) + 1) % len(TOP_K)]
        self._paint_views()

    def _parallel(self) -> ParallelCoords | None:
        """The parallel coordinates when they have the keys (shown and focused)."""
        focused = self.focused
        return focused if isinstance(focused, ParallelCoords) else None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("axis", "trial", "open_picked"):
            return self._parallel() is not None
        return True

    @property
    def active_bindings(self) -> dict[str, ActiveBinding]:
        """While a plot has the screen (its tab, or the parallel coordinates have focus), its
        keys come right after Help: at 80 columns the footer cuts what comes last."""
        found = super().active_bindings
        tabs = self.query(TabbedContent)
        plot_tab = bool(tabs) and tabs.first().active in ("tab-chart", "tab-parallel")
        promoted = ((PARALLEL_KEY_IDS if self._parallel() is not None else ())
                    + (PLOT_KEY_IDS if plot_tab or self._parallel() is not None else ()))
        keys = list(found)
        ours = sorted((k for k in keys if found[k].binding.id in promoted),
                      key=lambda k: promoted.index(found[k].binding.id or ""))
        first = keys[:1] if keys and found[keys[0]].binding.id == "app.help" else []
        return {k: found[k] for k in first + ours + keys}

    def action_axis(self, delta: int) -> None:
        if (parallel := self._parallel()) is not None:
            parallel.step_axis(delta)

    def action_trial(self, delta: int) -> None:
        if (parallel := self._parallel()) is not None:
            parallel.step_trial(delta)

    def action_open_picked(self) -> None:
        parallel = self._parallel()
        if parallel is not None and parallel.highlighted is not None:
            self._open_run(parallel.highlighted)

    @on(ParallelCoords.Highlighted)
    def _picked(self, event: ParallelCoords.Highlighted) -> None:
        """The trial table's cursor follows the trial picked with the keys (wide: the table
        shows below); the first highlight, on the data's arrival, leaves it be."""
        if event.number is None or self._parallel() is None:
            return
        for table in self.query("#trials").results(DataTable):
            try:
                table.move_cursor(row=table.get_row_index(str(event.number)))
            except Exception:  # the row is being rebuilt
                pass

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
        self._open_run(int(str(event.row_key.value)))

    def _open_run(self, number: int) -> None:
        from .run_detail import RunDetailScreen

        trial = next((t for t in self.trials if t.number == number), None)
        if trial is None or trial.run_id is None:
            self.notify(f"trial {number} has no run here", severity="warning")
            return
        self.app.push_screen(RunDetailScreen(trial.run_id))
