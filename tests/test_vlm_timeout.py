"""vlm_quantization's time limit (``timeout_s``, like the script adapter's): on expiry the
training stops, keeps ``last.pt`` and fails with "timed out after N s"."""

from __future__ import annotations

import pytest

from adapters.conformance import RecordingReporter
from adapters.vlm_quantization import VLMQuantizationAdapter

ENDLESS = {"dataset": "synthetic", "n_train": 64, "n_query": 8, "n_database": 32, "image_size": 16, "epochs": 10_000,
           "batch_size": 32, "width": 8, "log_every": 1}


def test_training_past_its_time_limit_fails(tmp_path):
    adapter = VLMQuantizationAdapter()
    assert adapter.validate_config(ENDLESS)["timeout_s"] == 0  # default: no limit
    cfg = adapter.validate_config({**ENDLESS, "timeout_s": 1})
    rep = RecordingReporter(tmp_path / "run")
    with pytest.raises(RuntimeError, match=r"^timed out after 1 s$"):
        adapter.train(cfg, rep)
    assert any(n == "last.pt" for n, _ in rep.checkpoints), "resumable from where it stopped"


def test_time_limit_is_validated():
    from adapters.base import ConfigError

    with pytest.raises(ConfigError):
        VLMQuantizationAdapter.validate_config({**ENDLESS, "timeout_s": -1})
