"""Quality check: train the default config on the generated set, evaluate, print the table.

    python -m adapters.vlm_quantization.quality [--set key=value ...] [--bar 0.95]

Trains in a temporary run directory with a local reporter, evaluates ``best.pt`` on the test
split (mAP and P@K, both directions, every bit length, Hamming and cosine), evaluates a
randomly initialised model of the same config as the chance baseline, and prints both tables
and the wall time. Exits 1 when Hamming mAP at 64 bits is below ``--bar`` in either direction.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path


class LocalReporter:
    """A Reporter that prints epochs and keeps metrics in memory."""

    def __init__(self, run_dir: Path, quiet: bool = False):
        self.run_dir = run_dir
        (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
        self.metrics: list[tuple[int | None, dict]] = []
        self.quiet = quiet

    def log(self, metrics, step=None, epoch=None) -> None:
        self.metrics.append((step, dict(metrics)))

    def progress(self, fraction: float, message: str = "") -> None:
        pass

    def checkpoint_path(self, name: str) -> Path:
        return self.run_dir / "checkpoints" / name

    def checkpoint_saved(self, name: str, step=None) -> None:
        pass

    def should_stop(self) -> bool:
        return False

    def info(self, message: str) -> None:
        if not self.quiet:
            print(message, flush=True)


def run(overrides: dict, bar: float = 0.95) -> dict:
    from .adapter import VLMQuantizationAdapter
    from .evaluation import format_table
    from .runtime import build_model, save_checkpoint
    from .tokenizer import CharTokenizer

    adapter = VLMQuantizationAdapter()
    cfg = adapter.validate_config(overrides)
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        rep = LocalReporter(Path(tmp) / "run")
        result = adapter.train(cfg, rep)
        t_train = time.time() - t0
        trained = adapter.evaluate(cfg, rep.checkpoint_path("best.pt"), rep)
        wall = time.time() - t0
        # chance baseline: the same architecture, randomly initialised, same vocabulary
        import torch

        state = torch.load(rep.checkpoint_path("best.pt"), weights_only=True)
        tok = CharTokenizer(list(state["vocab"]), int(state["max_len"]))
        torch.manual_seed(cfg["seed"])
        save_checkpoint(Path(tmp) / "random.pt", build_model(cfg, len(tok)), tok, cfg)
        baseline = adapter.evaluate(cfg, Path(tmp) / "random.pt", LocalReporter(rep.run_dir,
                                                                                quiet=True))
    ok = min(trained.summary["map_i2t_64"], trained.summary["map_t2i_64"]) >= bar
    print("\nconfig:", {k: v for k, v in cfg.items() if k in overrides} or "defaults")
    print(f"train result: {result}")
    print("\ntrained (best.pt), test split:")
    print(format_table(trained.data["rows"]))
    print("\nrandom init baseline, test split:")
    print(format_table(baseline.data["rows"]))
    print(f"\nwall time: train {t_train:.0f}s, train+eval {wall:.0f}s")
    print(f"64-bit Hamming mAP i2t {trained.summary['map_i2t_64']:.4f} "
          f"t2i {trained.summary['map_t2i_64']:.4f} -> {'PASS' if ok else 'FAIL'} (bar {bar})")
    return {"ok": ok, "wall_s": wall, "summary": trained.summary,
            "baseline": baseline.summary}


def main(argv: list[str] | None = None) -> int:
    from .adapter import VLMQuantizationAdapter

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE")
    p.add_argument("--bar", type=float, default=0.95)
    args = p.parse_args(argv)
    overrides = VLMQuantizationAdapter.config_schema().parse_assignments(args.set)
    return 0 if run(overrides, args.bar)["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
