"""Dialogs of the Search area: pick a run's checkpoint to search, and an image path prompt
that completes file system paths as you type."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.suggester import Suggester
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option


@dataclass(frozen=True)
class Source:
    """What a search runs against: one checkpoint of one run."""

    run_id: int
    checkpoint: str
    label: str  # "exp › run 3"
    adapter: str
    index_items: int | None = None  # None: no index yet

    @property
    def key(self) -> str:
        return f"{self.run_id}:{self.checkpoint}"


class SourcePicker(ModalScreen[Source | None]):
    """Experiment › run › checkpoint, grouped by experiment; only searchable adapters."""

    BINDINGS = [Binding("escape", "dismiss_none", "Cancel", id="search.pick_cancel")]

    def __init__(self, sources: list[Source], current: str | None = None) -> None:
        super().__init__()
        self.sources = sources
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog picker"):
            yield Label("Search which checkpoint?  (enter pick, esc cancel)", classes="question")
            options: list[Option | None] = []
            last_exp = None
            for s in self.sources:
                exp = s.label.split(" › ")[0]
                if exp != last_exp:
                    if last_exp is not None:
                        options.append(None)
                    options.append(Option(f"{exp}  ({s.adapter})", disabled=True))
                    last_exp = exp
                idx = (f"index {s.index_items:,} items" if s.index_items is not None
                       else "no index yet (b builds one)")
                options.append(Option(f"  {s.label} › {s.checkpoint}   {idx}", id=s.key))
            if not self.sources:
                options.append(Option("no trained run of a searchable adapter yet",
                                      disabled=True))
            yield OptionList(*options, id="source-list")

    def on_mount(self) -> None:
        ol = self.query_one(OptionList)
        if self.current:
            try:
                ol.highlighted = ol.get_option_index(self.current)
            except Exception:  # noqa: BLE001 - the option vanished; keep the default
                pass
        ol.focus()

    @on(OptionList.OptionSelected)
    def _picked(self, event: OptionList.OptionSelected) -> None:
        by_key = {s.key: s for s in self.sources}
        self.dismiss(by_key.get(event.option.id or ""))

    def action_dismiss_none(self) -> None:
        self.dismiss(None)


def path_matches(value: str, limit: int | None = 50) -> list[str]:
    """Entries completing ``value`` (``~`` expanded), directories with a trailing slash; the
    first ``limit`` in name order (None: all)."""
    text = os.path.expanduser(value) if value else ""
    folder, prefix = os.path.split(text)
    try:
        with os.scandir(folder or ".") as it:
            names = sorted((e.name + ("/" if e.is_dir() else ""))
                           for e in it if e.name.startswith(prefix)
                           and (prefix.startswith(".") or not e.name.startswith(".")))
    except OSError:
        return []
    head = value[: len(value) - len(prefix)] if prefix else value
    return [head + n for n in names[:limit]]


def completed(value: str) -> str:
    """What tab makes of ``value``: the one entry completing it, else the longest prefix the
    entries share (``value`` itself when they share no more)."""
    found = path_matches(value, limit=None)  # all: the first 50 may share more than all do
    if len(found) == 1:
        return found[0]
    common = os.path.commonprefix(found)
    return common if len(common) > len(value) else value


class PathSuggester(Suggester):
    """Suggests the first file system entry that completes what was typed (shown greyed after
    the text; only a display: accepting it reads the file system again, see PathInput)."""

    def __init__(self) -> None:
        super().__init__(use_cache=False, case_sensitive=True)

    async def get_suggestion(self, value: str) -> str | None:
        if not value:
            return None
        found = path_matches(value, limit=1)
        return found[0] if found else None


class PathInput(Input):
    """A path field whose completions are applied in the order the keys were typed.

    Typed characters wait in this widget's message queue, while a priority binding (tab) runs
    as soon as the app reads its key: a tab that completed ``inp.value`` at once completed
    what had been handled so far and the characters still queued landed after the completion
    (``walk`` + tab ran on ``wal``). So the dialog's keys only queue a completion here
    (``call_later``), behind the characters typed before them, and each completion reads the
    value and sets value and cursor in one step. → accepts the first match read at that moment,
    never the suggester's answer, which comes from a worker and may not have arrived yet.
    """

    def complete(self) -> None:
        """Tab: complete the value; the cursor goes to its end."""
        self.value = completed(self.value)
        self.cursor_position = len(self.value)

    def accept_or_right(self) -> None:
        """→: at the end of the value, accept the first match; elsewhere move right."""
        if self.cursor_at_end and self.selection.is_empty and self.value:
            found = path_matches(self.value, limit=1)
            if found:
                self.value = found[0]
                self.cursor_position = len(self.value)
            return
        self.action_cursor_right()


class ImagePathPrompt(ModalScreen[str | None]):
    """Ask for an image file; tab or → accepts the completion; the file must exist."""

    BINDINGS = [
        Binding("escape", "dismiss_none", "Cancel", id="search.path_cancel"),
        Binding("tab", "complete", "Complete", id="search.path_complete", priority=True),
        Binding("right", "accept", "Accept suggestion", id="search.path_accept", priority=True,
                show=False),
    ]

    def __init__(self, start: str = "") -> None:
        super().__init__()
        self.start = start

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Image to search with: tab completes, enter searches, esc cancels",
                        classes="question")
            # the start path is not selected: typing goes after it, as tab's completions do
            yield PathInput(placeholder="path/to/image.png", id="image-path",
                            suggester=PathSuggester(), select_on_focus=False)
            yield Label("", id="path-hint", classes="field-help")
            yield Label("", id="path-error", classes="field-error")

    def on_mount(self) -> None:
        inp = self.query_one(PathInput)
        # set once mounted, so Input's first change (which moves its cursor to the end) is
        # this one and not the first key typed; then the cursor stands after the text
        inp.value = self.start
        inp.cursor_position = len(inp.value)
        inp.focus()
        self._hint(self.start)

    def action_complete(self) -> None:
        inp = self.query_one(PathInput)
        inp.call_later(inp.complete)  # after the keys typed before this one (PathInput)

    def action_accept(self) -> None:
        inp = self.query_one(PathInput)
        inp.call_later(inp.accept_or_right)

    @on(Input.Changed)
    def _changed(self, event: Input.Changed) -> None:
        self._hint(event.value)
        self.query_one("#path-error", Label).update("")

    def _hint(self, value: str) -> None:
        found = path_matches(value, limit=6) if value else []
        names = [Path(f.rstrip("/")).name + ("/" if f.endswith("/") else "") for f in found]
        self.query_one("#path-hint", Label).update("  ".join(names))

    @on(Input.Submitted)
    def _submit(self, event: Input.Submitted) -> None:
        value = event.value.strip()
        path = Path(os.path.expanduser(value)) if value else None
        if path is None:
            self._error("type a path to an image file")
        elif not path.is_file():
            self._error(f"no such file: {value}")
        elif not os.access(path, os.R_OK):
            self._error(f"cannot read {value}")
        else:
            self.dismiss(str(path.resolve()))

    def _error(self, text: str) -> None:
        self.query_one("#path-error", Label).update(text)

    def action_dismiss_none(self) -> None:
        self.dismiss(None)


class HitDetail(ModalScreen[str | None]):
    """One search result opened: a larger picture, the whole text, rank and score, where it
    came from; ``m`` asks for more like it (dismisses with "more"), esc or enter closes."""

    BINDINGS = [
        Binding("escape", "dismiss_none", "Close", id="search.hit_close"),
        Binding("enter", "dismiss_none", "Close", show=False, id="search.hit_close_enter"),
        Binding("m", "more", "More like this", id="search.hit_more"),
    ]
    DEFAULT_CSS = """
    HitDetail .hit-image { width: 32; height: 16; }
    HitDetail .hit-text { width: 100%; height: auto; }
    HitDetail .dialog { width: 72; max-width: 95%; height: auto; max-height: 95%; }
    """

    def __init__(self, hit, thumbs: str | None = None) -> None:
        super().__init__()
        self.hit = hit
        self.thumbs = thumbs

    def compose(self) -> ComposeResult:
        from rich.text import Text

        from ..widgets.search_results import fmt_score
        from ..widgets.thumb import image_widget_class

        hit, extra = self.hit, dict(getattr(self.hit, "extra", None) or {})
        label = extra.get("score_label") or "score"
        head = Text.assemble((f"#{hit.rank}", "bold"), f"  {label}={fmt_score(hit.score)}",
                             (f"  {extra['metric']} · {extra['bits']} bits", "dim")
                             if "metric" in extra and "bits" in extra else "",
                             (f"  item {hit.item_id}", "dim"))
        with Vertical(classes="dialog"):
            yield Label(head, classes="question")
            if hit.image_path:
                yield image_widget_class(self.thumbs)(hit.image_path, classes="hit-image")
            yield Label(Text(hit.text or "(no text)"), classes="hit-text")
            if hit.image_path:
                yield Label(Text(str(hit.image_path), style="dim"), classes="hit-text")
            if extra.get("credit"):
                yield Label(Text(str(extra["credit"]), style="italic dim"), classes="hit-text")
            keys = "m more like this · esc closes" if hit.image_path else "esc closes"
            yield Label(Text(keys, style="dim"), classes="field-help")

    def on_mount(self) -> None:
        self._fit()

    def on_resize(self) -> None:
        self._fit()

    def _fit(self) -> None:
        """The picture takes what the text and keys leave (it is square: cells are 1:2)."""
        for img in self.query(".hit-image"):
            rows = max(4, min(16, self.app.size.height - 15))
            img.styles.height = rows
            img.styles.width = rows * 2

    def action_more(self) -> None:
        if self.hit.image_path:
            self.dismiss("more")

    def action_dismiss_none(self) -> None:
        self.dismiss(None)
