"""Search index: encode a database split once, then answer text and image queries warm.

Layout of ``index_dir``::

    meta.json          hash_dim, bit lengths, item ids, captions, labels, thumbnail names
    model.pt           the checkpoint's weights, config and vocabulary (no optimizer)
    img_codes.npy      packed sign codes of the images (full hash_dim; codes.pack_signs)
    txt_codes.npy      packed sign codes of the captions
    img_feats.npy      L2-normalised continuous codes of the images (float32)
    txt_feats.npy      L2-normalised continuous codes of the captions
    thumbs/000000.png  64-px thumbnails, one per item

A prefix of a code is the code at that bit length; cosine at ``bits`` re-normalises the
first ``bits`` feature columns (a row's global scale does not change the prefix's direction).

The index is built on the job's device; ``model.pt`` holds CPU tensors and ``load_index``
puts the model on the CPU unless asked for another device.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from adapters.base import SearchHit

from . import kernels
from .codes import prefix_codes
from .data import load_image
from .model import bit_lengths
from .runtime import (
    describe_device,
    encode_images,
    encode_texts,
    job_device,
    load_checkpoint,
    load_dataset,
    resolve_device,
    save_checkpoint,
    split_captions,
)

THUMB = 64
METHODS = ("hamming", "cosine")


def _thumbnail(item, image_size: int) -> Image.Image:
    if item.thumb is not None:
        return Image.fromarray(item.thumb).resize((THUMB, THUMB), Image.Resampling.LANCZOS)
    if item.path is not None:
        with Image.open(item.path) as im:
            rgb = im.convert("RGB")
            rgb.thumbnail((THUMB, THUMB))
            return rgb.copy()
    return Image.fromarray(item.pixels()).resize((THUMB, THUMB), Image.Resampling.NEAREST)


def build_index(cfg: dict[str, Any], checkpoint: Path, index_dir: Path, reporter) -> dict:
    t0 = time.time()
    device = job_device(reporter)
    model, tok, state = load_checkpoint(checkpoint, device)
    reporter.info(describe_device(device))
    mcfg = state["config"]
    data_cfg = {**cfg, "image_size": mcfg["image_size"]}
    items = load_dataset(data_cfg, info=reporter.info, progress=reporter.progress).test.database
    index_dir = Path(index_dir)
    (index_dir / "thumbs").mkdir(parents=True, exist_ok=True)
    reporter.progress(0.05, f"encoding {len(items)} images")
    img_h = np.concatenate([encode_images(model, [it.pixels() for it in items[i:i + 512]])
                            for i in range(0, len(items), 512)])
    reporter.progress(0.4, f"encoding {len(items)} captions")
    captions = split_captions(items)
    txt_h = encode_texts(model, tok, captions)
    reporter.progress(0.5, "writing codes and features")
    for name, h in (("img", img_h), ("txt", txt_h)):
        np.save(index_dir / f"{name}_codes.npy", kernels.pack(np.where(h >= 0, 1, -1)))
        np.save(index_dir / f"{name}_feats.npy", kernels.normalise(h))
    thumbs = []
    for i, it in enumerate(items):
        name = f"{i:06d}.png"
        _thumbnail(it, mcfg["image_size"]).save(index_dir / "thumbs" / name)
        thumbs.append(name)
        if i % 100 == 0:
            reporter.progress(0.5 + 0.45 * i / len(items), f"thumbnails {i}/{len(items)}")
    save_checkpoint(index_dir / "model.pt", model, tok, mcfg)
    meta = {"hash_dim": mcfg["hash_dim"], "bits": list(bit_lengths(mcfg["hash_dim"])),
            "image_size": mcfg["image_size"], "n_items": len(items),
            "item_ids": [it.item_id for it in items], "captions": captions,
            "labels": [list(it.labels) if it.labels is not None else int(it.label)
                       for it in items],
            "chars": [it.char for it in items], "thumbs": thumbs,
            "source_checkpoint": str(checkpoint), "dataset": cfg["dataset"]}
    if cfg["dataset"] == "openmoji":
        from .openmoji import ATTRIBUTION

        meta["attribution"] = ATTRIBUTION
    (index_dir / "meta.json").write_text(json.dumps(meta, ensure_ascii=False), "utf-8")
    reporter.progress(1.0, f"indexed {len(items)} items")
    return {"n_items": len(items), "hash_dim": mcfg["hash_dim"],
            "seconds": round(time.time() - t0, 2)}


@dataclass
class VLMIndex:
    """A loaded index: the model (loaded once) and the database arrays, kept warm."""

    index_dir: Path
    model: Any
    tokenizer: Any
    meta: dict[str, Any]
    img_codes: np.ndarray  # (n, words) packed at hash_dim bits, as saved
    txt_codes: np.ndarray
    img_feats: np.ndarray
    txt_feats: np.ndarray
    _cache: dict[tuple[str, str, int], np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def img_signs(self) -> np.ndarray:
        """(n, hash_dim) in {-1, +1}, unpacked on demand (searches use the packed codes)."""
        return kernels.unpack(self.img_codes, self.meta["hash_dim"])

    @property
    def txt_signs(self) -> np.ndarray:
        return kernels.unpack(self.txt_codes, self.meta["hash_dim"])

    def packed(self, side: str, bits: int) -> np.ndarray:
        key = ("codes", side, bits)
        if key not in self._cache:
            full = self.img_codes if side == "img" else self.txt_codes
            self._cache[key] = prefix_codes(full, bits)
        return self._cache[key]

    def feats(self, side: str, bits: int) -> np.ndarray:
        key = ("feats", side, bits)
        if key not in self._cache:
            f = self.img_feats if side == "img" else self.txt_feats
            self._cache[key] = kernels.normalise(f[:, :bits])
        return self._cache[key]

    def thumb(self, i: int) -> str:
        return str(self.index_dir / "thumbs" / self.meta["thumbs"][i])


def load_index(index_dir: Path, device: str = "cpu") -> VLMIndex:
    """The index with its model on ``device``: the CPU unless told otherwise (the TUI and CLI
    search in their own process, whatever device built the index)."""
    index_dir = Path(index_dir)
    meta_path = index_dir / "meta.json"
    if not meta_path.is_file():
        raise FileNotFoundError(f"not an index directory (no meta.json): {index_dir}")
    meta = json.loads(meta_path.read_text("utf-8"))
    model, tok, _ = load_checkpoint(index_dir / "model.pt", resolve_device(device))
    arrays = [np.load(index_dir / f"{side}_{kind}.npy")
              for kind in ("codes", "feats") for side in ("img", "txt")]
    return VLMIndex(index_dir, model, tok, meta, *arrays)


def _check(index: VLMIndex, k: int, bits: int, method: str) -> None:
    if bits not in index.meta["bits"]:
        raise ValueError(f"bits must be one of {index.meta['bits']} for this index, got {bits}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")


def _search(index: VLMIndex, q_h: np.ndarray, side: str, k: int, bits: int,
            method: str) -> list[SearchHit]:
    k = min(k, index.meta["n_items"])
    if method == "hamming":
        q = kernels.pack(np.where(q_h[None, :bits] >= 0, 1, -1))
        idx, score = kernels.hamming_topk(index.packed(side, bits), q[0], k)
    else:
        q = kernels.normalise(q_h[:bits])
        idx, score = kernels.cosine_topk(index.feats(side, bits), q, k)
    hits = []
    for rank, (i, s) in enumerate(zip(np.ravel(idx), np.ravel(score), strict=True), start=1):
        i = int(i)
        hits.append(SearchHit(rank=rank, score=float(s), item_id=index.meta["item_ids"][i],
                              text=index.meta["captions"][i], image_path=index.thumb(i),
                              extra={"metric": method, "bits": bits,
                                     "score_label": "d" if method == "hamming" else "cos",
                                     "label": index.meta["labels"][i], "index": i,
                                     **({"credit": index.meta["attribution"]}
                                        if "attribution" in index.meta else {})}))
    return hits


def search_by_text(index: VLMIndex, query: str, k: int = 10, bits: int = 64,
                   method: str = "hamming") -> list[SearchHit]:
    """Top-k images for a caption (English, Korean or anything the vocabulary covers)."""
    if not isinstance(query, str) or not query.strip():
        raise ValueError("empty text query: type a caption to search for")
    _check(index, k, bits, method)
    q_h = encode_texts(index.model, index.tokenizer, [query.strip()])[0]
    return _search(index, q_h, "img", k, bits, method)


def search_by_image(index: VLMIndex, path: Path, k: int = 10, bits: int = 64,
                    method: str = "hamming") -> list[SearchHit]:
    """Top-k captions for an image file."""
    _check(index, k, bits, method)
    try:
        array = load_image(Path(path), index.meta["image_size"])
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read image {path}: {exc}") from exc
    q_h = encode_images(index.model, [array])[0]
    return _search(index, q_h, "txt", k, bits, method)
