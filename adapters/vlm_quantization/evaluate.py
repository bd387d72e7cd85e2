"""The evaluate job: the full retrieval table on the test split (see ``evaluation``)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from adapters.base import EvalResult

from .evaluation import METHODS, encode_split, format_table, score_codes, summary, table_data
from .model import bit_lengths
from .runtime import load_checkpoint, load_dataset


def evaluate(cfg: dict[str, Any], checkpoint: Path, reporter) -> EvalResult:
    t0 = time.time()
    reporter.progress(0.0, f"loading {checkpoint.name}")
    model, tok, state = load_checkpoint(checkpoint)
    mcfg = state["config"]
    data = load_dataset({**cfg, "image_size": mcfg["image_size"]}, info=reporter.info)
    reporter.progress(0.2, "encoding the test split")
    enc = encode_split(model, tok, data.test)
    reporter.progress(0.6, "scoring")
    rows = score_codes(enc, bit_lengths(mcfg["hash_dim"]), METHODS)
    relevance = ("same (shape, colour) label" if cfg["dataset"] == "synthetic"
                 else "same image")
    data_out = table_data(rows, n_query=len(data.test.query), n_database=len(data.test.database),
                          split="test", checkpoint=checkpoint.name, relevance=relevance,
                          seconds=round(time.time() - t0, 2))
    reporter.info("test retrieval:\n" + format_table(rows))
    reporter.progress(1.0, "done")
    return EvalResult("retrieval_table", data_out, summary(rows))
