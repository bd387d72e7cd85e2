"""The quality bar, the way a user meets it: the adapter's DEFAULT config (the real OpenMoji
set) trained with `labdeck run start ... --wait` and evaluated with `labdeck eval ... --wait`
(real workers): clearly above chance at every bit length, far above a random init, and the
64-bit code better than the 8-bit one. The margins are wide on purpose (float arithmetic and
seeds move mAP by a few points; README: quality table and how the margins were measured)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from helpers import TEST_SEED, labdeck_env


def _cli(home, *args):
    res = subprocess.run([sys.executable, "-m", "cli", *args, "--json"],
                         env=labdeck_env(home), capture_output=True, text=True, timeout=1400)
    assert res.returncode == 0, (args, res.stdout[-2000:], res.stderr[-2000:])
    return json.loads(res.stdout)


# the default config at fewer epochs than its 40 (which take ~3 min quiet, ~5 min on CI, and
# would hold the gate past 15 minutes), on one CPU thread: the gate's other test worker has
# the other core (two trainings of two threads each on 2 cores spin against each other);
# README: the 40-epoch figures and the script for them
EPOCHS = int(os.environ.get("LABDECK_QUALITY_EPOCHS", "20"))


@pytest.mark.slow
@pytest.mark.learning
@pytest.mark.first
@pytest.mark.timeout(1500)  # ~100 s on 2 quiet cores; a loaded machine may take 3x
def test_default_config_via_cli_is_clearly_above_chance(home) -> None:
    # the default config; only the seed moves when LABDECK_TEST_SEED asks (margin checks).
    _cli(home, "exp", "create", "quality", "--adapter", "vlm_quantization",
         "--set", f"seed={TEST_SEED}", "--set", f"epochs={EPOCHS}", "--set", "num_threads=1")
    run = _cli(home, "run", "start", "quality", "--wait")
    assert run["status"] == "completed", run
    job = _cli(home, "eval", "quality/1", "--wait")
    assert job["status"] == "completed", job
    data = job["result"]["data"]
    assert data["relevance"].startswith("shares a label") and data["n_query"] >= 100
    chance = data["chance_map"]
    assert 0.0 < chance < 0.1, chance
    hamming = {r["bits"]: r for r in data["rows"] if r["method"] == "hamming"}
    print(f"\nquality seed {TEST_SEED}: chance {chance:.4f} "
          + " ".join(f"{b}:{r['map_i2t']:.3f}/{r['map_t2i']:.3f}" for b, r in hamming.items()))
    for row in hamming.values():  # measured 0.33-0.51 at 8-64 bits vs chance ~0.05
        assert row["map_i2t"] >= 3 * chance and row["map_t2i"] >= 3 * chance, row
    for d in ("map_i2t", "map_t2i"):
        assert hamming[64][d] >= 0.2, hamming[64]
        assert hamming[64][d] > hamming[8][d], (hamming[8], hamming[64])

    # the demo's search: "고양이" (cat, in Korean) ranks cat emoji among ~1,600 far above
    # chance (about 12 are cats: 0.2 expected in the top 25, 0.4 in the top 50). Measured at
    # 20 epochs: 8, 7 and 3 cats in the top 50, the first at rank 1, 8 and 18 (seeds 0, 1 on
    # two threads; seed 0 on one); 40 epochs: 8 in the top 10. One query is noisy; the mAP
    # asserts above are the quality bar, this one says the demo's query finds cats at all.
    _cli(home, "index", "build", "quality/1", "--wait")
    hits = _cli(home, "search", "text", "고양이", "--run", "quality/1", "--k", "50")["hits"]
    from adapters.vlm_quantization.openmoji import label_vocabulary

    cat = label_vocabulary().index("cat")
    ranks = [i for i, h in enumerate(hits) if cat in h["label"]]
    print(f"고양이: cats at ranks {ranks}")
    assert len(ranks) >= 2 and ranks[0] < 25, hits  # chance: 0.4 in the top 50, 0.2 in 25
    assert all(h["credit"].startswith("All emojis designed by OpenMoji") for h in hits)

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
    for d in ("map_i2t_64", "map_t2i_64"):
        assert base.summary[d] * 2 < job["result"]["summary"][d], (base.summary, d)
