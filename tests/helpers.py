"""Shared test helpers."""

import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = Path(__file__).resolve().parent / "scripts"
# Learning-sensitive tests train with this seed. The gate uses 0; `LABDECK_TEST_SEED=N` reruns
# them with another seed to check that their margins hold (README, "Checking the margins").
TEST_SEED = int(os.environ.get("LABDECK_TEST_SEED", "0"))


def script_command(*extra: str) -> str:
    return f"{sys.executable} {SCRIPTS / 'log_metrics.py'} " + " ".join(extra)


def wait_for(cond, timeout: float = 20.0, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def labdeck_env(home: Path) -> dict:
    env = dict(os.environ)
    env["LABDECK_HOME"] = str(home)
    env["PYTHONPATH"] = str(ROOT)
    return env


FAKE_NVML = Path(__file__).resolve().parent / "fake_nvml"


def with_fake_nvml(env: dict, spec: Path) -> dict:
    """``env`` for a process (and the workers it starts) that sees the fake ``pynvml`` of
    tests/fake_nvml, first on PYTHONPATH, describing the machine in ``spec``."""
    env = dict(env)
    rest = env.get("PYTHONPATH")
    env["PYTHONPATH"] = str(FAKE_NVML) + (os.pathsep + rest if rest else "")
    env["FAKE_NVML_SPEC"] = str(spec)
    return env


def fake_nvml_in_process(spec: Path, monkeypatch):
    """Make ``import pynvml`` in this process the fake of tests/fake_nvml, reading ``spec``;
    undone by ``monkeypatch`` (call ``sys.modules.pop("pynvml")`` after the test too)."""
    import importlib

    monkeypatch.setenv("FAKE_NVML_SPEC", str(spec))
    monkeypatch.syspath_prepend(str(FAKE_NVML))
    monkeypatch.delitem(sys.modules, "pynvml", raising=False)
    importlib.import_module("pynvml")


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes whose process group is ``pgid``."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            out.append(int(entry))
    return out
