"""Typed messages the screens and widgets exchange (attributes down, messages up)."""

from __future__ import annotations

from textual.message import Message


class DataChanged(Message):
    """Another connection committed (a worker logged metrics, a job moved): reload views."""
