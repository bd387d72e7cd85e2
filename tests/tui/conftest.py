"""Fixtures for the TUI tests: a fresh home per test, a seeded one, and condition waits."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from tui import colors

from .seed import FROZEN_NOW, seed_home


@pytest.fixture(autouse=True)
def _fresh_colours():
    colors.reset()
    yield


@pytest.fixture
def home(tmp_path: Path, monkeypatch) -> Path:
    h = tmp_path / "home"
    monkeypatch.setenv("LABDECK_HOME", str(h))
    return h


@pytest.fixture
def seeded(home: Path, monkeypatch) -> Path:
    monkeypatch.setenv("LABDECK_FROZEN_NOW", str(FROZEN_NOW))
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
