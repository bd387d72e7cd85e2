"""A SelectionList whose ticks read without colour: ``[x]`` ticked, ``[ ]`` not (Textual's own
draws ``▐X▌`` for both and tells them apart by colour only, which a user misread)."""

from __future__ import annotations

from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip
from textual.widgets import OptionList, SelectionList
from textual.widgets.option_list import OptionDoesNotExist
from textual.widgets.selection_list import SelectionType

TICKED, UNTICKED = "[x] ", "[ ] "


class TickList(SelectionList[SelectionType]):
    def _get_left_gutter_width(self) -> int:
        return len(TICKED)

    def render_line(self, y: int) -> Strip:
        line = OptionList.render_line(self, y)
        index = self.scroll_offset.y + y
        try:
            selection = self.get_option_at_index(index)
        except OptionDoesNotExist:
            return line
        ticked = selection.value in self._selected
        segments = list(line)
        base = (segments[0].style if segments else None) or self.rich_style
        style = base + Style(bold=ticked, meta={"option": index})
        return Strip([Segment(TICKED if ticked else UNTICKED, style=style), *segments])
