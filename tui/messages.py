"""Typed messages the screens and widgets exchange (attributes down, messages up)."""

from __future__ import annotations

from textual.message import Message


class DataChanged(Message):
    """Another connection committed (a worker logged metrics, a job moved): reload views."""


class OpenRun(Message):
    def __init__(self, run_id: int) -> None:
        super().__init__()
        self.run_id = run_id


class OpenCompare(Message):
    def __init__(self, refs: list[str | int]) -> None:
        super().__init__()
        self.refs = refs


class MetricsToggled(Message):
    """The set of metrics to chart changed."""

    def __init__(self, keys: list[str]) -> None:
        super().__init__()
        self.keys = keys
