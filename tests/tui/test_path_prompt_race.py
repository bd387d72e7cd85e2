"""The Search area's image path prompt under fast typing (issue 15 item 5): tab completion
once ran ahead of the characters typed before it (a priority binding runs as the app reads
its key, the characters still waited in the Input's queue), and the prompt's start path was
selected, so the first character typed replaced it. Keys here are posted the way a terminal
delivers them, in bursts, without waiting for the app between them; the value must always be
exactly what typing and completing one key after the other gives."""

from __future__ import annotations

import asyncio
import os
import random
from pathlib import Path

from textual import events
from textual.keys import _character_to_key
from textual.widgets import Input

from tui.app import LabdeckApp
from tui.screens.search_modals import ImagePathPrompt

from .conftest import settle, wait_for

TREE = ("walk-notes/green.png", "walk-notes/grey.png", "walk-notes/gravel.png",
        "walk-k/kite.png", "wander.png", "zebra.png")


def make_tree(root: Path) -> None:
    for rel in TREE:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"")


def after_tab(value: str) -> str:
    """What one tab should make of ``value``: the one entry completing it (a folder with a
    slash), else the longest prefix the entries share, else ``value``."""
    folder, prefix = os.path.split(value)
    try:
        names = sorted(n + ("/" if os.path.isdir(os.path.join(folder, n)) else "")
                       for n in os.listdir(folder or ".")
                       if n.startswith(prefix) and not n.startswith("."))
    except OSError:
        return value
    matches = [value[:len(value) - len(prefix)] + n for n in names]
    if len(matches) == 1:
        return matches[0]
    common = os.path.commonprefix(matches)
    return common if len(common) > len(value) else value


def typist(rng: random.Random, start: str, target: str, root: str) -> tuple[list[str], str]:
    """Keys a person types to reach ``target`` from ``start``, pressing tab now and then and
    going on from what the tab gave; and the value those keys should leave. Tabs only inside
    ``root``: folders above it (the shared /tmp) change while other tests run."""
    value, keys = start, []
    while value != target:
        if value.startswith(root) and rng.random() < 0.35 and len(keys) < 80:
            keys.append("tab")
            value = after_tab(value)
        else:
            keys.append(target[len(value)])
            value += target[len(value)]
    if rng.random() < 0.5:  # and sometimes a tab at the very end, on a whole file name
        keys.append("tab")
        value = after_tab(value)
    return keys, value


def key_event(key: str) -> events.Key:
    if len(key) == 1:
        return events.Key(key if key.isalnum() else _character_to_key(key), key)
    return events.Key(key, None)


async def type_in_bursts(app, rng: random.Random, keys: list[str]) -> None:
    """Post the keys to the app as a terminal does, a few at a time, never waiting for them
    to be handled."""
    i = 0
    while i < len(keys):
        burst = rng.randint(1, 6)
        for key in keys[i:i + burst]:
            app.post_message(key_event(key))
        i += burst
        await asyncio.sleep(0)


async def test_tab_completion_keeps_pace_with_fast_typing(home, tmp_path):
    root = tmp_path / "pics"
    make_tree(root)
    targets = [str(root / rel) for rel in TREE]
    rng = random.Random(15)
    app = LabdeckApp(home=home, poll_s=60)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.ready)
        for round_ in range(25):
            # half the prompts open on a folder (as Search opens them on the samples folder)
            start = f"{root}{os.sep}" if round_ % 2 else ""
            keys, want = typist(rng, start, rng.choice(targets), f"{root}{os.sep}")
            app.push_screen(ImagePathPrompt(start))
            await wait_for(pilot, lambda: isinstance(app.focused, Input)
                           and isinstance(app.screen, ImagePathPrompt))
            prompt = app.screen
            inp = prompt.query_one(Input)
            await type_in_bursts(app, rng, keys)
            try:
                await wait_for(pilot, lambda inp=inp, want=want: inp.value == want, timeout=10)
            except AssertionError:
                pass  # the assertion below says what came instead
            await settle(pilot)
            assert inp.value == want, f"round {round_}: keys {keys} from {start!r}"
            assert inp.cursor_position == len(want)
            await pilot.press("escape")
            await wait_for(pilot, lambda prompt=prompt: app.screen is not prompt)


async def test_start_path_is_kept_and_right_arrow_accepts_the_first_match(home, tmp_path):
    root = tmp_path / "pics"
    make_tree(root)
    app = LabdeckApp(home=home, poll_s=60)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.ready)
        app.push_screen(ImagePathPrompt(f"{root}{os.sep}"))
        await wait_for(pilot, lambda: isinstance(app.focused, Input)
                       and isinstance(app.screen, ImagePathPrompt))
        inp = app.screen.query_one(Input)
        # typing goes after the start path, not over it
        await pilot.press("w", "a", "l", "k", "-", "n")
        assert inp.value == f"{root}/walk-n"
        # → at the end takes the first entry, at once (not when a worker's suggestion lands)
        app.post_message(key_event("right"))
        app.post_message(key_event("g"))
        await wait_for(pilot, lambda: inp.value == f"{root}/walk-notes/g")
        await settle(pilot)
        assert inp.value == f"{root}/walk-notes/g"
        # → elsewhere still moves the cursor
        await pilot.press("home", "right")
        assert inp.cursor_position == 1
