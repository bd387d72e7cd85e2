"""Quality check: train a config (the default: the OpenMoji set), evaluate, print the tables.

    python -m adapters.vlm_quantization.quality [--set key=value ...] [--bar 0.2]

Trains in a temporary run directory with a local reporter, evaluates ``best.pt`` on the test
split (mAP and P@K, both directions, every bit length, Hamming on the codes and cosine on the
same model's float features, the codes' upper bound), evaluates a randomly initialised model
of the same config as a baseline, and prints both tables, the chance level, the wall time and
a Markdown table as the README shows it. Exits 1 when Hamming mAP at 64 bits is below
``--bar`` in either direction.
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


def markdown(rows: list[dict], baseline: list[dict]) -> str:
    """bits | Hamming mAP | cosine (float features) | Hamming P@10 | random init, each
    image->text / text->image."""
    def cell(r: dict, key: str) -> str:
        return f"{r[f'{key}_i2t']:.4f} / {r[f'{key}_t2i']:.4f}"

    by = {(r["method"], r["bits"]): r for r in rows}
    base = {(r["method"], r["bits"]): r for r in baseline}
    out = ["| bits | Hamming mAP | cosine mAP (float) | Hamming P@10 | random init (Hamming mAP) |",
           "|---|---|---|---|---|"]
    for bits in sorted({r["bits"] for r in rows}):
        h, c, b = by[("hamming", bits)], by[("cosine", bits)], base[("hamming", bits)]
        out.append(f"| {bits} | {cell(h, 'map')} | {cell(c, 'map')} | {cell(h, 'p@10')} | "
                   f"{cell(b, 'map')} |")
    return "\n".join(out)


def run(overrides: dict, bar: float = 0.2) -> dict:
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
    print(f"\nchance (a random ranking): {trained.data.get('chance_map', 0):.4f}")
    print(f"wall time: train {t_train:.0f}s, train+eval {wall:.0f}s")
    print("\n" + markdown(trained.data["rows"], baseline.data["rows"]))
    print(f"64-bit Hamming mAP i2t {trained.summary['map_i2t_64']:.4f} "
          f"t2i {trained.summary['map_t2i_64']:.4f} -> {'PASS' if ok else 'FAIL'} (bar {bar})")
    return {"ok": ok, "wall_s": wall, "summary": trained.summary,
            "baseline": baseline.summary}


def main(argv: list[str] | None = None) -> int:
    from .adapter import VLMQuantizationAdapter

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE")
    p.add_argument("--bar", type=float, default=0.2)
    args = p.parse_args(argv)
    overrides = VLMQuantizationAdapter.config_schema().parse_assignments(args.set)
    return 0 if run(overrides, args.bar)["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
