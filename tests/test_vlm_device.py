"""vlm_quantization on the device its job was given. No GPU here: the device plumbing runs on
"cpu", checkpoints hold CPU tensors and reload with map_location, and a job given "cuda" on a
machine where torch sees none fails at once with a clear error (in process and as a worker)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import labdeck_env

from adapters.conformance import RecordingReporter
from adapters.vlm_quantization import VLMQuantizationAdapter
from adapters.vlm_quantization.runtime import (
    DeviceUnavailable,
    amp_dtype,
    autocast,
    encode_texts,
    grad_scaler,
    load_checkpoint,
)
from engine.api import Engine

QUICK = {"dataset": "synthetic", "n_train": 64, "n_query": 8, "n_database": 32, "image_size": 16, "epochs": 1,
         "batch_size": 32, "width": 8, "log_every": 1, "num_threads": 1}
no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")


class DeviceReporter(RecordingReporter):
    def __init__(self, run_dir: Path, device: str):
        super().__init__(run_dir)
        self.device = device


def _tensors(value, out: list) -> list:
    if isinstance(value, torch.Tensor):
        out.append(value)
    elif isinstance(value, dict):
        for v in value.values():
            _tensors(v, out)
    elif isinstance(value, (list, tuple)):
        for v in value:
            _tensors(v, out)
    return out


def test_cpu_device_trains_evaluates_indexes_and_searches(tmp_path: Path) -> None:
    adapter = VLMQuantizationAdapter()
    cfg = adapter.validate_config(QUICK)
    rep = DeviceReporter(tmp_path / "run", "cpu")
    adapter.train(cfg, rep)
    assert "device cpu" in rep.lines
    ckpt = rep.checkpoint_path("best.pt")
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    tensors = _tensors(state, [])
    assert tensors and {t.device.type for t in tensors} == {"cpu"}  # model and optimizer
    assert "scaler" not in state  # no loss scaling off CUDA

    # reloaded with map_location onto the device asked for: the same codes as a second load
    model, tok, _ = load_checkpoint(ckpt, torch.device("cpu"))
    assert {p.device.type for p in model.parameters()} == {"cpu"}
    again, _, _ = load_checkpoint(ckpt, "cpu")
    texts = ["a red circle", "빨간 원"]
    assert (encode_texts(model, tok, texts) == encode_texts(again, tok, texts)).all()

    res = adapter.evaluate(cfg, ckpt, DeviceReporter(tmp_path / "eval", "cpu"))
    assert res.data["rows"]
    adapter.build_index(cfg, ckpt, tmp_path / "index", DeviceReporter(tmp_path / "ix", "cpu"))
    index = adapter.load_index(tmp_path / "index")  # search: in process, on the CPU
    assert {p.device.type for p in index.model.parameters()} == {"cpu"}
    assert len(adapter.search_by_text(index, "a red circle", k=3)) == 3


def test_a_reporter_without_a_device_means_cpu(tmp_path: Path) -> None:
    rep = RecordingReporter(tmp_path / "run")
    VLMQuantizationAdapter().train(VLMQuantizationAdapter.validate_config(QUICK), rep)
    assert "device cpu" in rep.lines


def test_no_mixed_precision_on_the_cpu() -> None:
    cpu = torch.device("cpu")
    assert amp_dtype(cpu) is None and not grad_scaler(cpu).is_enabled()
    with autocast(cpu):
        x = torch.ones(2, 2) @ torch.ones(2, 2)
    assert x.dtype == torch.float32


@no_cuda
@pytest.mark.parametrize("job", ["train", "evaluate", "build_index"])
def test_cuda_without_a_gpu_fails_at_once_and_clearly(tmp_path: Path, job: str) -> None:
    adapter = VLMQuantizationAdapter()
    cfg = adapter.validate_config(QUICK)
    rep = DeviceReporter(tmp_path / "run", "cuda")
    with pytest.raises(DeviceUnavailable) as err:
        if job == "train":
            adapter.train(cfg, rep)
        elif job == "evaluate":
            adapter.evaluate(cfg, tmp_path / "none.pt", rep)
        else:
            adapter.build_index(cfg, tmp_path / "none.pt", tmp_path / "ix", rep)
    text = str(err.value)
    assert "given device 'cuda' but torch sees no CUDA GPU" in text and "--gpus 0" in text
    assert not rep.metrics and not rep.checkpoints and not rep.progress_calls  # nothing ran


@no_cuda
def test_a_gpu_job_on_a_machine_without_cuda_fails_with_the_reason(home: Path) -> None:
    """Through a worker: the job's error names the device problem, not a torch traceback."""
    async def queue() -> tuple[int, int]:
        async with Engine.session(home) as engine:
            await engine.create_experiment("gpu", "vlm_quantization", QUICK)
            return await engine.start_run("gpu")

    run_id, job_id = asyncio.run(queue())
    env = labdeck_env(home)
    env.update(LABDECK_GPU_INDICES="0", CUDA_VISIBLE_DEVICES="0", LABDECK_SYS_METRICS_S="0")
    done = subprocess.run([sys.executable, "-m", "engine.worker", "--home", str(home),
                           str(job_id)], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1

    async def check() -> None:
        async with Engine.session(home) as engine:
            job = await engine.get_job(job_id)
            assert job.status == "failed"
            assert job.error.startswith("DeviceUnavailable: this job was given device 'cuda'")

    asyncio.run(check())
