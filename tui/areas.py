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


def bracket_key(word: str, key: str) -> str:
    """``word`` with ``key`` in brackets where it first occurs: ``[E]xperiments``,
    ``s[T]udies``; ``[K]word`` when the word lacks it."""
    at = word.lower().find(key.lower())
    if at < 0:
        return f"[{key}]{word}"
    return f"{word[:at].lower()}[{key}]{word[at + 1:]}"


@dataclass(frozen=True)
class Area:
    mode: str                  # the app's mode name and the ``AREA`` of the screens in it
    key: str                   # the one key that opens it from anywhere
    title: str                 # as the header, the palette and help show it
    screen: type[Screen]       # the screen the mode starts on
    short: str = ""            # the header's name for it on a narrow terminal ("Exp")

    @property
    def binding(self) -> Binding:
        """The app-wide binding; its id is what ``<home>/keymap.json`` remaps."""
        return Binding(self.key, f"area('{self.mode}')", self.title, id=f"app.{self.mode}",
                       show=False)

    @property
    def label(self) -> str:
        """The title with its key in brackets: ``[E]xperiments``, ``s[T]udies``."""
        return bracket_key(self.title, self.key)

    @property
    def short_label(self) -> str:
        """The short name with its key in brackets: ``[E]xp``, ``s[T]ud``."""
        return bracket_key(self.short or self.title, self.key)


AREAS: tuple[Area, ...] = (
    Area("experiments", "E", "Experiments", ExperimentsScreen, "Exp"),
    Area("compare", "C", "Compare", CompareScreen, "Cmp"),
    Area("jobs", "J", "Jobs", JobsScreen, "Jobs"),
    Area("search", "S", "Search", SearchScreen, "Srch"),
    Area("studies", "T", "Studies", StudiesScreen, "Stud"),
    Area("resources", "G", "GPUs", ResourcesScreen, "GPU"),
)
