"""Fixtures for the TUI tests: a fresh home per test, a seeded one, and condition waits."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import fake_nvml_in_process

from tui import clock, colors

from .seed import FROZEN_NOW, seed_home


class FixedClock(clock.Clock):
    """The TUI's clock in tests: ``now`` is ``at`` (move it by assigning), and each reading of
    the monotonic timer is ``step_s`` after the last, so a measured figure (a search's
    "12 results in 4.1 ms") is the same on every machine."""

    def __init__(self, at: float = FROZEN_NOW, step_s: float = 0.0041) -> None:
        self.at = at
        self.step_s = step_s
        self._ticks = 0

    def now(self) -> float:
        return self.at

    def monotonic(self) -> float:
        self._ticks += 1
        return self._ticks * self.step_s


@pytest.fixture(autouse=True)
def _steady_cursor(monkeypatch):
    """A focused Input's cursor does not blink in tests: a snapshot taken mid-blink (forms open
    with a field focused) would differ from run to run."""
    from textual.widgets import Input

    monkeypatch.setattr(Input, "_toggle_cursor", lambda self: None)


@pytest.fixture(autouse=True)
def _fresh_colours():
    colors.reset()
    yield


@pytest.fixture(autouse=True)
def gpu_machine(tmp_path: Path, monkeypatch) -> Callable[..., None]:
    """The machine's GPUs as the TUI tests see them: the fake ``pynvml`` (tests/fake_nvml)
    in place of nvidia-ml-py, with no NVML library unless a test describes devices by calling
    this (``devices`` as tests/fake_nvml/pynvml.py reads them). So no screen of these tests
    depends on the GPUs of the machine that runs them."""
    spec = tmp_path / "nvml.json"

    def machine(devices: list[dict] | None = None, library: bool = True) -> None:
        spec.write_text(json.dumps({"library": library and devices is not None,
                                    "devices": devices or []}))

    machine()
    fake_nvml_in_process(spec, monkeypatch)
    yield machine
    sys.modules.pop("pynvml", None)


@pytest.fixture
def home(tmp_path: Path, monkeypatch) -> Path:
    h = tmp_path / "home"
    monkeypatch.setenv("LABDECK_HOME", str(h))
    return h


@pytest.fixture
def frozen_clock(monkeypatch) -> FixedClock:
    """Stop the TUI's clock at FROZEN_NOW for this test; returns it (``.at`` moves it)."""
    fixed = FixedClock()
    monkeypatch.setattr(clock, "clock", fixed)
    return fixed


@pytest.fixture
def seeded(home: Path, monkeypatch, frozen_clock) -> Path:
    monkeypatch.setenv("HOME", str(home.parent))  # the header shows ~/home everywhere
    return seed_home(home)


async def wait_for(pilot, cond: Callable[[], object], timeout: float = 10.0,
                   what: str = "condition") -> None:
    """Poll ``cond`` between UI ticks until it is truthy; fail after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            if cond():
                return
        except Exception:  # the widget may not exist yet
            pass
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await pilot.pause(0.05)


async def settle(pilot, timeout: float = 10.0) -> None:
    """Wait until the app is quiet: no worker pending or running across two UI ticks, then no
    scheduled animation. Use before a snapshot instead of a fixed pause, which a loaded machine
    outruns."""
    from textual.worker import WorkerState

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    quiet = 0
    while quiet < 2:
        await pilot.pause()
        busy = any(w.state in (WorkerState.PENDING, WorkerState.RUNNING)
                   for w in pilot.app.workers)
        quiet = 0 if busy else quiet + 1
        if busy:
            if loop.time() > deadline:
                raise AssertionError(f"app still busy after {timeout} s: "
                                     f"{[w.name for w in pilot.app.workers]}")
            await pilot.pause(0.02)
    await pilot.wait_for_scheduled_animations()
    await pilot.pause()


async def palette_shows(pilot, text: str, timeout: float = 10.0) -> None:
    """Wait until the command palette's highlighted hit contains ``text`` (its search runs in
    the background, so the hits arrive some ticks after the keys)."""
    from textual.command import CommandList

    def highlighted() -> str:
        hits = pilot.app.screen.query_one(CommandList)
        if hits.highlighted is None:
            return ""
        return str(hits.get_option_at_index(hits.highlighted).prompt)

    await wait_for(pilot, lambda: text.lower() in highlighted().lower(), timeout=timeout,
                   what=f"palette hit {text!r}")
