"""Ranked search hits: a grid of thumbnail cards (rank, score, text under each) and a ranked
text list, both with a selected hit the parent can act on ("more like this")."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.binding import Binding
from textual.containers import Center, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import DataTable, Label

from .thumb import image_widget_class

CARD_MIN_WIDTH = 17


def fmt_score(score: float) -> str:
    if float(score).is_integer():
        return str(int(score))
    return f"{score:.3f}"


class HitSelected(Message):
    """The selected hit changed (or was clicked)."""

    def __init__(self, index: int, hit: Any) -> None:
        super().__init__()
        self.index = index
        self.hit = hit


class ThumbCard(Vertical):
    """One hit: its thumbnail with rank and score in the border, its text underneath."""

    def __init__(self, hit: Any, position: int, thumbs: str | None = None) -> None:
        super().__init__(classes="thumb-card")
        self.hit = hit
        self.position = position
        self._thumbs = thumbs
        # the adapter may name its score (e.g. "d" for a distance): "3  d=12"
        label = (getattr(hit, "extra", None) or {}).get("score_label")
        score = fmt_score(hit.score)
        self.border_title = f"{hit.rank}  {label}={score}" if label else f"{hit.rank}  {score}"

    def compose(self):
        with Center(classes="thumb-box"):
            if self.hit.image_path:
                yield image_widget_class(self._thumbs)(self.hit.image_path, classes="thumb-img")
            else:
                yield Label("(no image)", classes="thumb-img")
        yield Label(self.hit.text or self.hit.item_id, classes="thumb-caption")

    class Clicked(Message):
        def __init__(self, position: int) -> None:
            super().__init__()
            self.position = position

    def on_click(self) -> None:
        self.post_message(self.Clicked(self.position))


class ThumbGrid(VerticalScroll, can_focus=True):
    """Hits as a grid of cards; arrow keys move the selection, the grid scrolls to it."""

    DEFAULT_CSS = """
    ThumbGrid { layout: grid; grid-size: 4; grid-rows: 11; grid-gutter: 0 1; }
    ThumbGrid .thumb-card { border: round $panel; height: 11; }
    ThumbGrid .thumb-box { height: 7; }
    ThumbGrid .thumb-card.-selected { border: round $accent; }
    ThumbGrid:focus .thumb-card.-selected { border: heavy $accent; }
    ThumbGrid .thumb-img { width: 14; height: 7; }
    ThumbGrid .thumb-caption { width: 100%; height: 2; text-overflow: ellipsis;
                               color: $text-muted; }
    """
    BINDINGS = [
        Binding("left", "move(-1, 0)", "Prev", show=False, id="search.grid_left"),
        Binding("right", "move(1, 0)", "Next", show=False, id="search.grid_right"),
        Binding("up", "move(0, -1)", "Up", show=False, id="search.grid_up"),
        Binding("down", "move(0, 1)", "Down", show=False, id="search.grid_down"),
    ]

    def __init__(self, thumbs: str | None = None, **kw) -> None:
        super().__init__(**kw)
        self.thumbs = thumbs
        self.hits: list[Any] = []
        self.selected = 0
        self._columns = 4

    async def show(self, hits: list[Any]) -> None:
        self.hits = list(hits)
        self.selected = 0
        await self.remove_children()
        await self.mount_all([ThumbCard(h, i, self.thumbs) for i, h in enumerate(self.hits)])
        self._mark()
        self.scroll_home(animate=False)

    def on_resize(self) -> None:
        cols = max(1, (self.size.width + 1) // (CARD_MIN_WIDTH + 1))
        if cols != self._columns:
            self._columns = cols
            self.styles.grid_size_columns = cols

    def action_move(self, dx: int, dy: int) -> None:
        if self.hits:
            self.select(self.selected + dx + dy * self._columns)

    def select(self, index: int) -> None:
        if not self.hits:
            return
        self.selected = max(0, min(len(self.hits) - 1, index))
        self._mark()
        self.post_message(HitSelected(self.selected, self.hits[self.selected]))

    def on_thumb_card_clicked(self, event: ThumbCard.Clicked) -> None:
        event.stop()
        self.focus()
        self.select(event.position)

    def _mark(self) -> None:
        for card in self.query(ThumbCard):
            on = card.position == self.selected
            card.set_class(on, "-selected")
            if on:
                self.scroll_to_widget(card, animate=False)

    @property
    def selected_hit(self) -> Any | None:
        return self.hits[self.selected] if self.hits else None


class HitList(DataTable):
    """Hits as ranked text rows (what an image query returns)."""

    def __init__(self, **kw) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kw)
        self.hits: list[Any] = []

    def on_mount(self) -> None:
        self.add_columns("rank", "score", "text")

    def show(self, hits: list[Any]) -> None:
        self.hits = list(hits)
        self.clear()
        for h in self.hits:
            self.add_row(Text(str(h.rank), justify="right"), fmt_score(h.score),
                         h.text or h.item_id)

    @property
    def selected_hit(self) -> Any | None:
        if not self.hits:
            return None
        return self.hits[min(self.cursor_row, len(self.hits) - 1)]
