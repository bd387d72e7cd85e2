import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
pytest.register_assert_rewrite("adapters.conformance")  # the suite's asserts explain themselves


@pytest.fixture(scope="session", autouse=True)
def render_cache(tmp_path_factory):
    """One cache of rendered OpenMoji for the whole session (workers inherit the variable),
    so each test home does not render the SVGs again."""
    import os

    path = tmp_path_factory.mktemp("render-cache")
    old = os.environ.get("LABDECK_CACHE_DIR")
    os.environ["LABDECK_CACHE_DIR"] = str(path)
    yield path
    if old is None:
        os.environ.pop("LABDECK_CACHE_DIR", None)
    else:
        os.environ["LABDECK_CACHE_DIR"] = old


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    h = tmp_path / "home"
    monkeypatch.setenv("LABDECK_HOME", str(h))
    monkeypatch.setenv("LABDECK_CANCEL_GRACE", "3")
    return h


def pytest_collection_modifyitems(config, items):
    """The longest test (marked `first`: the real-set training to a quality bar) goes first,
    so under `-n 2` (the gate) it runs beside the rest instead of alone at the end. Only that
    one: two trainings at once on 2 cores oversubscribe their OpenMP threads, which then spin
    against each other (measured: a 21 s fixture took 355 s)."""
    items.sort(key=lambda item: item.get_closest_marker("first") is None)
