"""The NVML probe on a machine without a GPU: the fake ``pynvml`` (tests/fake_nvml) stands in
for nvidia-ml-py with several devices, foreign processes, unsupported fields, no library."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from helpers import fake_nvml_in_process


@pytest.fixture
def fake_nvml(tmp_path: Path, monkeypatch):
    """Write a machine description; the returned function rewrites it."""
    spec = tmp_path / "nvml.json"

    def machine(devices: list[dict] | None = None, library: bool = True) -> None:
        spec.write_text(json.dumps({"library": library, "devices": devices or []}))

    machine()
    fake_nvml_in_process(spec, monkeypatch)
    yield machine
    sys.modules.pop("pynvml", None)


def test_no_library_means_no_gpus_and_no_error(fake_nvml) -> None:
    from engine.resources import probe_gpus

    fake_nvml(library=False)
    probe = probe_gpus()
    assert probe.gpus == [] and probe.status == "NVML library not found"


def test_no_device(fake_nvml) -> None:
    from engine.resources import probe_gpus

    assert probe_gpus().status == "no GPU"


def test_devices_processes_and_unsupported_fields(fake_nvml) -> None:
    from engine.resources import probe_gpus

    fake_nvml([
        {"uuid": "GPU-a", "name": "Fake A100", "total_mb": 40960, "used_mb": 10240,
         "util": 55, "temp": 61, "power_w": 250.5,
         "processes": [{"pid": 4242, "used_mb": 10000}]},
        {"uuid": "GPU-b", "name": "Fake T4", "total_mb": 16384, "used_mb": 0,
         "util": None, "temp": None, "power_w": None},
    ])
    probe = probe_gpus()
    assert probe.status == "ok" and [g.index for g in probe.gpus] == [0, 1]
    a, b = probe.gpus
    assert (a.uuid, a.name, a.util_pct, a.temp_c, a.power_w) == (
        "GPU-a", "Fake A100", 55.0, 61.0, 250.5)
    assert a.mem_free_mb == pytest.approx(30720)
    assert [(p.pid, p.used_mb, p.job_id) for p in a.processes] == [(4242, 10000.0, None)]
    assert a.foreign_mb() == pytest.approx(10000)
    assert (b.util_pct, b.temp_c, b.power_w) == (None, None, None)  # NotSupported: unknown


def test_real_bindings_on_this_machine_never_raise() -> None:
    """Whatever this machine has (usually no NVML library here), the probe answers."""
    from engine.resources import probe_gpus

    probe = probe_gpus()
    assert isinstance(probe.status, str) and (probe.gpus or probe.status != "ok")
