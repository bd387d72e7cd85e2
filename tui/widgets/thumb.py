"""Image thumbnails in the terminal through textual-image: Kitty graphics or Sixel where the
terminal speaks them, coloured half-cell blocks elsewhere.

``LABDECK_THUMBS`` picks the renderer: ``auto`` (default: detect), ``halfcell``, ``unicode``,
``sixel`` or ``kitty``. Tests force ``halfcell`` so snapshots do not depend on the terminal.

textual-image asks the terminal what it supports when it is first imported, which only works
before Textual owns stdin; this module imports it at load time, and the app imports this
module (through the search screen) before it starts.
"""

from __future__ import annotations

import os

from textual.widget import Widget
from textual_image import renderable as _renderables
from textual_image import widget as _widgets

THUMBS_ENV = "LABDECK_THUMBS"
MODES = ("auto", "halfcell", "unicode", "sixel", "kitty")

_WIDGETS: dict[str, type[Widget]] = {
    "auto": _widgets.Image, "halfcell": _widgets.HalfcellImage,
    "unicode": _widgets.UnicodeImage, "sixel": _widgets.SixelImage, "kitty": _widgets.TGPImage,
}
_RENDERABLES = {
    "auto": _renderables.Image, "halfcell": _renderables.HalfcellImage,
    "unicode": _renderables.UnicodeImage, "sixel": _renderables.SixelImage,
    "kitty": _renderables.TGPImage,
}


def thumb_mode(mode: str | None = None) -> str:
    """The renderer to use: an explicit ``mode``, else ``$LABDECK_THUMBS``, else ``auto``."""
    mode = (mode or os.environ.get(THUMBS_ENV) or "auto").strip().lower()
    return mode if mode in MODES else "auto"


def image_widget_class(mode: str | None = None) -> type[Widget]:
    """A textual-image widget class; construct it with a path or a PIL image."""
    return _WIDGETS[thumb_mode(mode)]


def image_renderable_class(mode: str | None = None):
    """A textual-image Rich renderable class: ``cls(path, width=cells, height=cells)``."""
    return _RENDERABLES[thumb_mode(mode)]


def auto_kind() -> str:
    """What ``auto`` resolved to in this terminal (for the help line)."""
    cls = _renderables.Image
    for name in ("sixel", "kitty", "halfcell", "unicode"):
        if _RENDERABLES[name] is cls:
            return name
    return "unknown"
