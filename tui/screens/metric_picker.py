"""`m` in Compare: choose which metrics get an overlaid chart, from the union of the
compared runs' metric keys, grouped by prefix (``train/``, ``val/``, ...)."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, SelectionList
from textual.widgets.selection_list import Selection

from engine.compare import natural_key

from ..widgets.tick_list import TickList

MAX_CHARTS = 6


def prefix_of(key: str) -> str:
    return key.rpartition("/")[0] + "/" if "/" in key else ""


def grouped(keys: list[str]) -> list[str]:
    """Keys ordered by prefix group (groups in order of first appearance, a bare key last),
    numbers by value (``map_8`` before ``map_16``)."""
    groups: dict[str, list[str]] = {}
    for key in sorted(keys, key=natural_key):
        groups.setdefault(prefix_of(key), []).append(key)
    bare = groups.pop("", [])
    return [k for g in groups.values() for k in g] + bare


def _prompt(key: str, first_in_group: bool) -> Text:
    prefix = prefix_of(key)
    return Text.assemble((prefix, "bold" if first_in_group else "dim"), key[len(prefix):])


class MetricPicker(ModalScreen[list[str] | None]):
    """Dismisses with the chosen keys (charted ones keep their order), or None."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel", id="metricpicker.cancel"),
                Binding("ctrl+s", "apply", "Apply", id="metricpicker.apply")]

    def __init__(self, keys: list[str], chosen: list[str]) -> None:
        super().__init__()
        self.keys = grouped(keys)
        self.chosen = list(chosen)

    def compose(self) -> ComposeResult:
        options, last_prefix = [], None
        for key in self.keys:
            prefix = prefix_of(key)
            options.append(Selection(_prompt(key, prefix != last_prefix), key,
                                     key in self.chosen))
            last_prefix = prefix
        with Vertical(classes="dialog metric-picker"):
            yield Label(f"Charted metrics (up to {MAX_CHARTS}): space toggles, ctrl+s applies")
            yield TickList[str](*options, id="metric-list")
            with Horizontal(classes="buttons"):
                yield Button("Apply (ctrl+s)", variant="primary", id="apply")
                yield Button("Cancel", id="cancel")

    def action_apply(self) -> None:
        picked = set(self.query_one(SelectionList).selected)
        # charts already shown keep their place; newly picked ones follow in list order
        keys = [k for k in self.chosen if k in picked]
        keys += [k for k in self.keys if k in picked and k not in keys]
        if not keys:
            self.notify("choose at least one metric", severity="warning")
            return
        if len(keys) > MAX_CHARTS:
            self.notify(f"at most {MAX_CHARTS} charts: keeping the first {MAX_CHARTS}",
                        severity="warning")
        self.dismiss(keys[:MAX_CHARTS])

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "cancel":
            self.dismiss(None)
        else:
            self.action_apply()
