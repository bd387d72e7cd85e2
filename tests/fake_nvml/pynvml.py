"""A fake of the ``pynvml`` module that nvidia-ml-py provides, for tests on machines without a
GPU (as gpustat's tests do). Put this directory first on ``sys.path`` / ``PYTHONPATH`` and
describe the machine in a JSON file named by ``FAKE_NVML_SPEC``:

    {"library": true,                       # false: nvmlInit raises NVMLError_LibraryNotFound
     "devices": [{"uuid": "GPU-0", "name": "Fake A100", "total_mb": 40960, "used_mb": 0,
                  "util": 0, "temp": 40, "power_w": 60,      # null: NotSupported
                  "processes": [{"pid": 123, "used_mb": 1024}]}]}

The file is read at every call, so a test changes the machine by rewriting it."""

from __future__ import annotations

import json
import os
from types import SimpleNamespace

NVML_TEMPERATURE_GPU = 0
MIB = 1024 * 1024


class NVMLError(Exception):
    pass


class NVMLError_LibraryNotFound(NVMLError):  # noqa: N801 - the real module's names
    pass


class NVMLError_DriverNotLoaded(NVMLError):  # noqa: N801
    pass


class NVMLError_NotSupported(NVMLError):  # noqa: N801
    pass


class NVMLError_Uninitialized(NVMLError):  # noqa: N801
    pass


_initialised = 0


def _spec() -> dict:
    path = os.environ.get("FAKE_NVML_SPEC")
    if not path:
        return {"library": False}
    with open(path) as fh:
        return json.load(fh)


def _dev(handle: int) -> dict:
    if not _initialised:
        raise NVMLError_Uninitialized("Uninitialized")
    return _spec()["devices"][handle]


def nvmlInit() -> None:
    global _initialised
    spec = _spec()
    if not spec.get("library", True):
        raise NVMLError_LibraryNotFound("NVML Shared Library Not Found")
    _initialised += 1


def nvmlShutdown() -> None:
    global _initialised
    _initialised = max(0, _initialised - 1)


def nvmlDeviceGetCount() -> int:
    if not _initialised:
        raise NVMLError_Uninitialized("Uninitialized")
    return len(_spec().get("devices", []))


def nvmlDeviceGetHandleByIndex(index: int) -> int:
    _dev(index)
    return index


def nvmlDeviceGetUUID(handle: int) -> str:
    return _dev(handle).get("uuid", f"GPU-fake-{handle}")


def nvmlDeviceGetName(handle: int) -> str:
    return _dev(handle).get("name", "Fake GPU")


def nvmlDeviceGetMemoryInfo(handle: int) -> SimpleNamespace:
    d = _dev(handle)
    total, used = d.get("total_mb", 16384) * MIB, d.get("used_mb", 0) * MIB
    return SimpleNamespace(total=total, used=used, free=total - used)


def _field(handle: int, name: str):
    value = _dev(handle).get(name, 0)
    if value is None:
        raise NVMLError_NotSupported("Not Supported")
    return value


def nvmlDeviceGetUtilizationRates(handle: int) -> SimpleNamespace:
    return SimpleNamespace(gpu=_field(handle, "util"), memory=0)


def nvmlDeviceGetTemperature(handle: int, sensor: int) -> int:
    return _field(handle, "temp")


def nvmlDeviceGetPowerUsage(handle: int) -> int:
    return int(_field(handle, "power_w") * 1000)


def nvmlDeviceGetComputeRunningProcesses(handle: int) -> list:
    return [SimpleNamespace(pid=p["pid"], usedGpuMemory=p.get("used_mb", 0) * MIB)
            for p in _dev(handle).get("processes", [])]


def nvmlDeviceGetGraphicsRunningProcesses(handle: int) -> list:
    return []
