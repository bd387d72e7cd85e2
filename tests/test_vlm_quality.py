"""The issue's quality bar, the way a user meets it: the adapter's DEFAULT config trained with
`labdeck run start ... --wait` and evaluated with `labdeck eval ... --wait` (real workers),
reaching mAP >= 0.95 at 64 bits both ways; a random init stays at chance."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from helpers import TEST_SEED, labdeck_env


def _cli(home, *args):
    res = subprocess.run([sys.executable, "-m", "cli", *args, "--json"],
                         env=labdeck_env(home), capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, (args, res.stdout[-2000:], res.stderr[-2000:])
    return json.loads(res.stdout)


@pytest.mark.slow
@pytest.mark.learning
def test_default_config_via_cli_reaches_the_bar(home) -> None:
    # the default config; only the seed moves when LABDECK_TEST_SEED asks (margin checks).
    # Seeds 0-2 reached 1.0 on an AMD EPYC (seed 0 also on Intel); the bar is the 0.95. Time is
    # not asserted here (README: ~2 min on 2 cores; the tests never time themselves).
    _cli(home, "exp", "create", "quality", "--adapter", "vlm_quantization",
         "--set", f"seed={TEST_SEED}")
    run = _cli(home, "run", "start", "quality", "--wait")
    assert run["status"] == "completed", run
    job = _cli(home, "eval", "quality/1", "--wait")
    assert job["status"] == "completed", job
    rows = job["result"]["data"]["rows"]
    row = next(r for r in rows if r["bits"] == 64 and r["method"] == "hamming")
    print(f"\nquality seed {TEST_SEED}: {row}")
    assert row["map_i2t"] >= 0.95 and row["map_t2i"] >= 0.95, row

    # the same architecture, randomly initialised, evaluated the same way: near chance
    import torch

    from adapters.vlm_quantization import VLMQuantizationAdapter
    from adapters.vlm_quantization.quality import LocalReporter
    from adapters.vlm_quantization.runtime import build_model, save_checkpoint
    from adapters.vlm_quantization.tokenizer import CharTokenizer

    adapter = VLMQuantizationAdapter()
    cfg = adapter.validate_config({})
    best = home / "runs" / str(run["run_id"]) / "checkpoints" / "best.pt"
    state = torch.load(best, weights_only=True)
    tok = CharTokenizer(list(state["vocab"]), int(state["max_len"]))
    torch.manual_seed(cfg["seed"])
    random_ckpt = home / "random.pt"
    save_checkpoint(random_ckpt, build_model(cfg, len(tok)), tok, cfg)
    base = adapter.evaluate(cfg, random_ckpt, LocalReporter(home / "rnd", quiet=True))
    assert base.summary["map_i2t_64"] < 0.15 and base.summary["map_t2i_64"] < 0.15
