import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
pytest.register_assert_rewrite("adapters.conformance")  # the suite's asserts explain themselves


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    h = tmp_path / "home"
    monkeypatch.setenv("LABDECK_HOME", str(h))
    monkeypatch.setenv("LABDECK_CANCEL_GRACE", "3")
    return h
