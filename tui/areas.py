"""The app's top-level areas, declared once: the app's modes and area keys, the header's
area line, the command palette's "Open ..." commands and the help screen's sections all
derive from ``AREAS``.

The header, which every screen composes, does not import this module (that would be a
circle through the screens); the app hands the areas down to it.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding
from textual.screen import Screen

from .screens.compare import CompareScreen
from .screens.experiments import ExperimentsScreen
from .screens.jobs import JobsScreen
from .screens.resources import ResourcesScreen
from .screens.search import SearchScreen
from .screens.studies import StudiesScreen


@dataclass(frozen=True)
class Area:
    mode: str                  # the app's mode name and the ``AREA`` of the screens in it
    key: str                   # the one key that opens it from anywhere
    title: str                 # as the header, the palette and help show it
    screen: type[Screen]       # the screen the mode starts on

    @property
    def binding(self) -> Binding:
        """The app-wide binding; its id is what ``<home>/keymap.json`` remaps."""
        return Binding(self.key, f"area('{self.mode}')", self.title, id=f"app.{self.mode}",
                       show=False)

    @property
    def label(self) -> str:
        """The title with its key in brackets: ``[E]xperiments``, ``s[T]udies``."""
        at = self.title.lower().find(self.key.lower())
        if at < 0:
            return f"[{self.key}]{self.title}"
        return f"{self.title[:at].lower()}[{self.key}]{self.title[at + 1:]}"


AREAS: tuple[Area, ...] = (
    Area("experiments", "E", "Experiments", ExperimentsScreen),
    Area("compare", "C", "Compare", CompareScreen),
    Area("jobs", "J", "Jobs", JobsScreen),
    Area("search", "S", "Search", SearchScreen),
    Area("studies", "T", "Studies", StudiesScreen),
    Area("resources", "G", "GPUs", ResourcesScreen),
)
