"""Scoring a trained model on a query/database split, and the evaluate job built on it.

``EvalResult.data`` (view type ``retrieval_table``)::

    {
      "columns": ["bits", "method", "map_i2t", "map_t2i", "p@1_i2t", "p@1_t2i",
                  "p@5_i2t", "p@5_t2i", "p@10_i2t", "p@10_t2i"],
      "rows": [{"bits": 8, "method": "hamming", "map_i2t": 0.61, ...}, ...],
      "higher_is_better": ["map_i2t", ...],      # every metric column
      "best": {"map_i2t": 7, ...},               # row index of the best value per column
      "n_query": 200, "n_database": 1000, "split": "test", "checkpoint": "best.pt",
      "relevance": "same (shape, colour) label",
      "chance_map": 0.028                       # what a random ranking scores on average
    }

Rows run over bit lengths (8 .. hash_dim, prefixes of one code) x methods ("hamming" on
sign codes, "cosine" on the continuous codes). ``summary`` holds the headline numbers:
``map_i2t_<bits>`` / ``map_t2i_<bits>`` for Hamming at every bit length.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from adapters.base import EvalResult

from .data import Split, label_arrays
from .metrics import cosine_distance, hamming_distance, retrieval_scores
from .model import bit_lengths
from .runtime import (
    describe_device,
    encode_images,
    encode_texts,
    job_device,
    load_checkpoint,
    load_dataset,
    split_captions,
)

KS = (1, 5, 10)
RELEVANCE = {"synthetic": "same (shape, colour) label", "folder": "same image",
             "openmoji": "shares a label (a content word of the emoji names)"}
METHODS = ("hamming", "cosine")


def encode_split(model, tok, split: Split) -> dict[str, np.ndarray]:
    q_lab, db_lab = label_arrays(split.query, split.database)
    return {
        "q_img": encode_images(model, [it.pixels() for it in split.query]),
        "q_txt": encode_texts(model, tok, split_captions(split.query)),
        "db_img": encode_images(model, [it.pixels() for it in split.database]),
        "db_txt": encode_texts(model, tok, split_captions(split.database)),
        "q_lab": q_lab,
        "db_lab": db_lab,
    }


def score_codes(enc: dict[str, np.ndarray], bits: tuple[int, ...],
                methods: tuple[str, ...] = METHODS, ks=KS) -> list[dict[str, Any]]:
    rows = []
    for method in methods:
        dist_fn = hamming_distance if method == "hamming" else cosine_distance
        for L in bits:
            row: dict[str, Any] = {"bits": L, "method": method}
            for direction, q, db in (("i2t", "q_img", "db_txt"), ("t2i", "q_txt", "db_img")):
                d = dist_fn(enc[q][:, :L], enc[db][:, :L])
                for name, val in retrieval_scores(d, enc["q_lab"], enc["db_lab"], ks).items():
                    row[f"{name}_{direction}"] = round(val, 6)
            rows.append(row)
    return rows


def chance_map(q_lab: np.ndarray, db_lab: np.ndarray) -> float:
    """The mAP a random ranking scores on average: each answerable query's share of relevant
    database items, averaged (the floor every trained row should clear)."""
    if q_lab.ndim == 2:
        share = (q_lab.astype(np.float32) @ db_lab.astype(np.float32).T > 0).mean(1)
    else:
        share = (q_lab[:, None] == db_lab[None, :]).mean(1)
    share = share[share > 0]
    return float(share.mean()) if len(share) else 0.0


def columns(ks=KS) -> list[str]:
    cols = ["bits", "method", "map_i2t", "map_t2i"]
    for k in ks:
        cols += [f"p@{k}_i2t", f"p@{k}_t2i"]
    return cols


def table_data(rows: list[dict[str, Any]], **meta: Any) -> dict[str, Any]:
    cols = columns()
    metric_cols = [c for c in cols if c not in ("bits", "method")]
    best = {c: int(np.argmax([r[c] for r in rows])) for c in metric_cols} if rows else {}
    return {"columns": cols, "rows": rows, "higher_is_better": metric_cols, "best": best, **meta}


def summary(rows: list[dict[str, Any]]) -> dict[str, float]:
    out = {}
    for r in rows:
        if r["method"] == "hamming":
            out[f"map_i2t_{r['bits']}"] = r["map_i2t"]
            out[f"map_t2i_{r['bits']}"] = r["map_t2i"]
    return out


def format_table(rows: list[dict[str, Any]]) -> str:
    cols = columns()
    lines = ["  ".join(f"{c:>9}" for c in cols)]
    for r in rows:
        lines.append("  ".join(f"{r[c]:>9.4f}" if isinstance(r[c], float) else f"{r[c]:>9}"
                               for c in cols))
    return "\n".join(lines)


def evaluate(cfg: dict[str, Any], checkpoint: Path, reporter) -> EvalResult:
    """The evaluate job: the full retrieval table on the test split, encoded on the job's
    device."""
    t0 = time.time()
    device = job_device(reporter)
    reporter.progress(0.0, f"loading {checkpoint.name}")
    model, tok, state = load_checkpoint(checkpoint, device)
    reporter.info(describe_device(device))
    mcfg = state["config"]
    data = load_dataset({**cfg, "image_size": mcfg["image_size"]}, info=reporter.info,
                        progress=reporter.progress)
    reporter.progress(0.2, "encoding the test split")
    enc = encode_split(model, tok, data.test)
    reporter.progress(0.6, "scoring")
    rows = score_codes(enc, bit_lengths(mcfg["hash_dim"]), METHODS)
    relevance = RELEVANCE[cfg["dataset"]]
    data_out = table_data(rows, n_query=len(data.test.query), n_database=len(data.test.database),
                          split="test", checkpoint=checkpoint.name, relevance=relevance,
                          chance_map=round(chance_map(enc["q_lab"], enc["db_lab"]), 6),
                          seconds=round(time.time() - t0, 2))
    reporter.info("test retrieval:\n" + format_table(rows))
    reporter.progress(1.0, "done")
    return EvalResult("retrieval_table", data_out, summary(rows))
