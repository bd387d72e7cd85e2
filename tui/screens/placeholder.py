"""A screen for an area whose content another issue delivers."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Footer, Static

from ..widgets.header import LabdeckHeader
from .base import AreaScreen


class PlaceholderScreen(AreaScreen):
    TEXT = ""

    def compose(self) -> ComposeResult:
        yield LabdeckHeader(self.AREA)
        yield Static(self.TEXT, classes="placeholder")
        yield Footer()
