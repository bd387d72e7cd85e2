"""Search area: the retrieval demo. Pick a run's checkpoint (of any adapter that declares a
search capability), build its index in place if it has none, query by text (samples one
click away) or by image (a path prompt, or "more like this" on a result), and see ranked
thumbnails; the adapter's search options become selectors; an Evals tab compares eval
results through their view type. Engine calls run in workers; the engine keeps the model
warm per checkpoint, so only the first query waits for it ("loading model…")."""

from __future__ import annotations

import os
from dataclasses import replace

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import (
    Button,
    ContentSwitcher,
    DataTable,
    Footer,
    Input,
    Label,
    ProgressBar,
    Static,
    TabbedContent,
    TabPane,
)

from ..widgets.header import LabdeckHeader
from ..widgets.search_evals import EvalsPane
from ..widgets.search_results import HitList, HitSelected, ThumbGrid
from .base import AreaScreen
from .search_build import SearchJobs
from .search_modals import HitDetail, ImagePathPrompt, Source, SourcePicker
from .search_query import SearchQueries
from .search_sources import AdapterSearch, cycle, default_source, load_sources, options_text

OPTION_KEYS = ("keys [ and ]", "key h")  # what cycles the first and the second adapter option
EMPTY = ("/ type a text query (enter searches) · n next sample query · o search by image\n"
         "enter opens a result · r pick another checkpoint · keys \\[ and ] and h change the "
         "search options · e evals")


class SearchScreen(SearchJobs, SearchQueries, AreaScreen):
    class StatusChanged(Message):
        """The status line now says ``text`` (building, loading the model, results...)."""

        def __init__(self, text: str, error: bool) -> None:
            super().__init__()
            self.text = text
            self.error = error

    AREA = "search"
    CSS_PATH = "search.tcss"
    BINDINGS = [
        Binding("slash", "focus_query", "Query", id="search.query"),
        Binding("escape", "focus_results", "Results", show=False, id="search.results"),
        Binding("r", "pick", "Checkpoint", id="search.pick"),
        Binding("b", "build", "Build index", id="search.build"),
        Binding("left_square_bracket", "option(0, -1)", "‹ option", id="search.option_prev",
                show=False),
        Binding("right_square_bracket", "option(0, 1)", "option ›", id="search.option_next"),
        Binding("h", "option(1, 1)", "option 2", id="search.option_cycle"),
        Binding("n", "sample", "Sample", id="search.sample"),
        Binding("o", "open_image", "Image…", id="search.open_image"),
        Binding("enter", "open_hit", "Open", id="search.open_hit"),
        Binding("m", "more_like", "More like this", id="search.more_like"),
        Binding("v", "eval", "Eval", id="search.eval"),
        Binding("e", "tab", "Evals", id="search.tab"),
    ]

    def __init__(self, thumbs: str | None = None) -> None:
        super().__init__()
        self.thumbs = thumbs
        self.sources: list[Source] = []
        self.pending: list[str] = []  # searchable runs still training
        self.source: Source | None = None
        self.adapters: dict[str, AdapterSearch | None] = {}
        self.values: dict[str, object] = {}
        self.warm: set[str] = set()
        self.build_job: int | None = None
        self.last_query: tuple[str, str] | None = None  # (kind, query)
        self.hits: list = []
        self.latency_ms: float | None = None
        self.status = ""
        self.searches = 0  # completed searches
        self.busy = False
        self.loaded = False
        self._sample_i = -1

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        yield LabdeckHeader(self.AREA)
        yield Label("", id="search-source", classes="search-line")
        yield Label("", id="search-options", classes="search-line")
        with Horizontal(id="search-query-row"):
            yield Label("query", id="search-query-label")
            yield Input(placeholder="type a text query and press enter  (/ focuses, esc leaves)",
                        id="search-query")
        yield Horizontal(id="search-samples")
        with Horizontal(id="search-status-row"):
            yield ProgressBar(total=1.0, show_eta=False, id="search-build-bar")
            yield Label("", id="search-status")
        with TabbedContent(id="search-tabs"):
            with TabPane("results", id="tab-results"):
                with ContentSwitcher(initial="search-empty", id="search-switch"):
                    yield Static(EMPTY, id="search-empty", classes="empty")
                    yield ThumbGrid(self.thumbs, id="search-grid")
                    yield HitList(id="search-list")
            with TabPane("evals", id="tab-evals"):
                yield EvalsPane(id="search-evals")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#search-build-bar").display = False
        self.query_one("#search-grid").focus()

    def reload(self) -> None:
        self._load()

    @property
    def adapter(self) -> AdapterSearch | None:
        return self.adapters.get(self.source.adapter) if self.source else None

    # ------------------------------------------------------------------ loading

    @work(exclusive=True, group="search-load", exit_on_error=False)
    async def _load(self) -> None:
        self.sources, self.pending = await load_sources(self.engine, self.adapters)
        keys = {s.key: s for s in self.sources}
        current = keys.get(self.source.key) if self.source else None
        self._use(current or default_source(self.sources))
        self.query_one(EvalsPane).show(await self.engine.list_eval_results())
        self.loaded = True

    def _use(self, source: Source | None) -> None:
        before = self.adapter
        self.source = source
        adapter = self.adapter
        if adapter is not before:
            self.values = dict(adapter.defaults) if adapter else {}
            self._samples(adapter.samples if adapter and adapter.text else ())
            self._relabel()
        self._source_line()
        self._options_line()
        if not self.busy and not self.build_job and not self.hits:
            self._set_status(self._hint())
        self.refresh_bindings()

    def _hint(self) -> str:
        if self.source is None and self.pending:
            return (f"{self.pending[0]}: its checkpoint shows up here once saved,"
                    " then b builds the index")
        if self.source is None:
            return "nothing to search yet: train a run of an adapter with search (E, then r)"
        if self.source.index_items is None:
            return f"{self.source.label} › {self.source.checkpoint} has no index: press b to build it"
        return "ready: / to type a query, n for a sample"

    def _source_line(self) -> None:
        s = self.source
        text = Text()
        if s is None:
            text.append("run: none", "dim")
        else:
            text.append("run ", "dim")
            text.append(f"{s.label} › {s.checkpoint}", "bold")
            text.append("   index ", "dim")
            if self.build_job:
                text.append(f"building (job {self.build_job})…", "bold yellow")
            elif s.index_items is None:
                text.append("none  ", "bold yellow")
                text.append(" b build index ", "reverse bold")
            else:
                text.append(f"{s.index_items:,} items ✓", "green")
        text.append("   r pick", "italic dim")
        self.query_one("#search-source", Label).update(text)

    def _options_line(self) -> None:
        opts = self.adapter.options if self.adapter else ()
        self.query_one("#search-options", Label).update(
            options_text(opts, self.values, OPTION_KEYS) if opts else Text("no search options",
                                                                           "dim"))

    def _samples(self, samples: tuple[str, ...]) -> None:
        box = self.query_one("#search-samples", Horizontal)
        box.remove_children()
        box.display = bool(samples)
        if samples:
            box.mount(Label("samples", id="search-samples-label"))
            box.mount_all(Button(q, compact=True, classes="sample", name=q) for q in samples)

    def _relabel(self) -> None:
        """Footer labels of the option keys come from the adapter's option names."""
        opts = self.adapter.options if self.adapter else ()
        first = (opts[0].label or opts[0].name) if opts else "option"
        second = (opts[1].label or opts[1].name) if len(opts) > 1 else "option 2"
        labels = {"search.option_prev": f"‹ {first}", "search.option_next": first,
                  "search.option_cycle": second}
        kb = self._bindings.key_to_bindings
        for key, bindings in list(kb.items()):
            kb[key] = [replace(b, description=labels[b.id]) if b.id in labels else b
                       for b in bindings]

    def _set_status(self, text: str | Text, error: bool = False) -> None:
        if str(text) != self.status:
            self.post_message(self.StatusChanged(str(text), error))
        self.status = str(text)
        label = self.query_one("#search-status", Label)
        label.set_class(error, "error")
        label.update(text)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        a, s = self.adapter, self.source
        if action == "build":
            return bool(a and a.index and s and s.index_items is None and not self.build_job)
        if action == "option":
            return bool(a and len(a.options) > int(parameters[0]))  # type: ignore[arg-type]
        if action == "sample":
            return bool(a and a.samples and a.text)
        if action == "open_image":
            return bool(a and a.image)
        if action == "more_like":
            return True if (a and a.image and self._selected_hit()) else None
        if action == "open_hit":
            return True if self._selected_hit() else None
        return True

    # ------------------------------------------------------------------ actions

    def action_focus_query(self) -> None:
        self.query_one(TabbedContent).active = "tab-results"
        self.query_one("#search-query", Input).focus()

    def action_focus_results(self) -> None:
        switch = self.query_one("#search-switch", ContentSwitcher)
        target = switch.current if switch.current != "search-empty" else "search-grid"
        self.query_one(f"#{target}").focus()

    def action_tab(self) -> None:
        tabs = self.query_one(TabbedContent)
        tabs.active = "tab-evals" if tabs.active == "tab-results" else "tab-results"

    def action_pick(self) -> None:
        def picked(source: Source | None) -> None:
            if source is not None and source.key != (self.source.key if self.source else None):
                self._clear_results()
                self._use(source)
                self._set_status(self._hint())

        self.app.push_screen(SourcePicker(self.sources, self.source.key if self.source else None),
                             picked)

    def action_option(self, which: int, step: int) -> None:
        opts = self.adapter.options if self.adapter else ()
        if which >= len(opts):
            return
        opt = opts[which]
        self.values[opt.name] = cycle(tuple(opt.choices), self.values.get(opt.name), step)
        self._options_line()
        if self.last_query:  # the same query, re-ranked under the new option
            self._query(*self.last_query)

    def action_sample(self) -> None:
        samples = self.adapter.samples if self.adapter else ()
        if samples:
            self._sample_i = (self._sample_i + 1) % len(samples)
            self._text_query(samples[self._sample_i])

    @on(Button.Pressed, ".sample")
    def _sample_pressed(self, event: Button.Pressed) -> None:
        self._text_query(event.button.name or "")

    @on(Input.Submitted, "#search-query")
    def _submitted(self, event: Input.Submitted) -> None:
        self._text_query(event.value)

    def _text_query(self, text: str) -> None:
        self.query_one("#search-query", Input).value = text
        if not text.strip():
            self._set_status("type something to search for (the query is empty)", error=True)
            self.notify("empty query: type some text first", severity="warning")
            return
        self._query("text", text.strip())

    def action_open_image(self) -> None:
        def chosen(path: str | None) -> None:
            if path:
                self._query("image", path)

        start = self.last_query[1] if self.last_query and self.last_query[0] == "image" else ""
        samples = self.engine.settings.home / "samples"
        if not start and samples.is_dir():  # the demo's pictures: tab lists them
            start = f"{samples}{os.sep}"
        self.app.push_screen(ImagePathPrompt(start), chosen)

    def _selected_hit(self):
        switch = self.query_one("#search-switch", ContentSwitcher)
        if switch.current == "search-grid":
            return self.query_one(ThumbGrid).selected_hit
        if switch.current == "search-list":
            return self.query_one(HitList).selected_hit
        return None

    def action_more_like(self) -> None:
        hit = self._selected_hit()
        if hit is None or not hit.image_path:
            self.notify("select a result with an image first", severity="warning")
            return
        self._query("image", hit.image_path)

    def action_open_hit(self) -> None:
        hit = self._selected_hit()
        if hit is None:
            return

        def closed(answer: str | None) -> None:
            if answer == "more":
                self._query("image", hit.image_path)

        self.app.push_screen(HitDetail(hit, self.thumbs), closed)

    @on(DataTable.RowSelected, "#search-list")
    def _row_opened(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open_hit()

    def on_hit_selected(self, event: HitSelected) -> None:
        self.refresh_bindings()
