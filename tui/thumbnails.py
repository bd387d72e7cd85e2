"""Search hits as thumbnails on a plain terminal (``labdeck search ... --show``), no app:
a grid of textual-image Rich renderables (Kitty graphics, Sixel or half-cell blocks, as the
terminal allows; ``LABDECK_THUMBS`` forces one) with rank, score and text under each.

The engine's CLI loads this module by name at call time, so ``engine/`` never imports rich.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from .widgets.search_results import fmt_score
from .widgets.thumb import image_renderable_class

CELL_WIDTH = 16  # columns per thumbnail; the height follows the image's aspect


def thumbnail_grid(hits: Iterable[Any], width: int = 80, cell: int = CELL_WIDTH,
                   mode: str | None = None) -> Table:
    """A Rich grid of the hits that carry an image (others show their text only)."""
    image_cls = image_renderable_class(mode)
    columns = max(1, (width + 1) // (cell + 2))
    grid = Table.grid(padding=(0, 2), pad_edge=False)
    for _ in range(columns):
        grid.add_column(width=cell, no_wrap=True)
    row: list[Any] = []
    for hit in hits:
        parts: list[Any] = []
        if hit.image_path:
            parts.append(image_cls(hit.image_path, width=cell, height="auto"))
        parts.append(Text.assemble((f"{hit.rank}", "bold"), "  ", fmt_score(hit.score)))
        parts.append(Text(hit.text or hit.item_id, overflow="ellipsis", no_wrap=True,
                          style="dim"))
        row.append(Group(*parts))
        if len(row) == columns:
            grid.add_row(*row)
            row = []
    if row:
        grid.add_row(*row)
    return grid


def show_thumbnails(hits: Iterable[Any], console: Console | None = None,
                    mode: str | None = None, cell: int = CELL_WIDTH) -> None:
    """Print the hits' thumbnails to ``console`` (default: stdout)."""
    console = console or Console()
    hits = list(hits)
    if not hits:
        console.print("(no results)")
        return
    console.print(thumbnail_grid(hits, width=console.width, cell=cell, mode=mode))
