"""Retrieval metrics: mAP over the whole database and precision at K.

Ranking is by ascending distance (Hamming distance, or negative cosine similarity), ties
broken by lower database index (a stable sort), so results are exact and reproducible.
A query and a database item are relevant when their labels are equal (1-D labels) or when they
share a label (2-D multi-hot labels). Queries with no
relevant item in the database are left out of the mean (mAP over answerable queries).
numpy only.
"""

from __future__ import annotations

import numpy as np


def ranking(dist: np.ndarray) -> np.ndarray:
    """(q, n) distances -> (q, n) database indices, nearest first, ties by lower index."""
    return np.argsort(dist, axis=1, kind="stable")


def relevance(order: np.ndarray, q_labels: np.ndarray, db_labels: np.ndarray) -> np.ndarray:
    """(q, n) 0/1 in ranked order. 1-D labels: relevant when equal; 2-D multi-hot rows:
    relevant when they share a label (the MIRFlickr / NUS-WIDE protocol)."""
    if q_labels.ndim == 2:
        shared = q_labels.astype(np.float32) @ db_labels.astype(np.float32).T > 0
        return np.take_along_axis(shared, order, axis=1).astype(np.float64)
    return (db_labels[order] == q_labels[:, None]).astype(np.float64)


def average_precision(rel: np.ndarray) -> np.ndarray:
    """Per-query AP from a (q, n) 0/1 matrix in ranked order; NaN where nothing is relevant."""
    hits = np.cumsum(rel, axis=1)
    ranks = np.arange(1, rel.shape[1] + 1)
    n_rel = rel.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (rel * hits / ranks).sum(1) / np.where(n_rel > 0, n_rel, np.nan)


def mean_average_precision(dist: np.ndarray, q_labels, db_labels) -> float:
    return retrieval_scores(dist, q_labels, db_labels, ks=())["map"]


def precision_at_k(dist: np.ndarray, q_labels, db_labels, k: int) -> float:
    return retrieval_scores(dist, q_labels, db_labels, ks=(k,))[f"p@{k}"]


def hamming_distance(q_codes: np.ndarray, db_codes: np.ndarray) -> np.ndarray:
    """Exact Hamming distance between {-1, +1} (or {0, 1}) sign matrices (q, L) and (n, L)."""
    q = (np.asarray(q_codes) > 0).astype(np.float32)
    d = (np.asarray(db_codes) > 0).astype(np.float32)
    L = q.shape[1]
    agree = q @ d.T + (1 - q) @ (1 - d).T
    return np.rint(L - agree)


def cosine_distance(q_feats: np.ndarray, db_feats: np.ndarray) -> np.ndarray:
    def unit(x):
        x = np.asarray(x, dtype=np.float64)
        return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)

    return -(unit(q_feats) @ unit(db_feats).T)


def retrieval_scores(dist: np.ndarray, q_labels, db_labels, ks=(1, 5, 10)) -> dict[str, float]:
    """mAP and P@K for one direction from one distance matrix (ranking computed once)."""
    rel = relevance(ranking(dist), np.asarray(q_labels), np.asarray(db_labels))
    ap = average_precision(rel)
    out = {"map": float(np.nanmean(ap)) if np.isfinite(ap).any() else 0.0}
    for k in ks:
        out[f"p@{k}"] = float(rel[:, :k].sum(1).mean() / k)
    return out
