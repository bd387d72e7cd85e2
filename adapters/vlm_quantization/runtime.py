"""Shared torch-side plumbing: dataset loading from a config, checkpoints, batch encoding.

Checkpoints are plain dicts (state_dicts, the config, the tokenizer vocabulary, counters) so
they load with ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .data import Dataset, Item, load_folder, synthetic_dataset
from .model import CrossModalHasher, images_to_tensor
from .tokenizer import CharTokenizer

if TYPE_CHECKING:
    from .siglip import HFTokenizer, SiglipHasher

    Hasher = CrossModalHasher | SiglipHasher
    Tokenizer = CharTokenizer | HFTokenizer


def load_dataset(config: dict[str, Any], info: Callable[[str], None] | None = None) -> Dataset:
    if config["dataset"] == "folder":
        if not config.get("data_dir"):
            raise ValueError("dataset=folder needs data_dir (an images folder)")
        return load_folder(Path(config["data_dir"]).expanduser(),
                           Path(config["captions_file"]).expanduser(), config["seed"],
                           config["image_size"], info=info)
    nq, ndb = config["n_query"], config["n_database"]
    return synthetic_dataset(config["n_train"], nq, ndb, config["seed"], config["image_size"],
                             n_val_query=max(1, nq // 2), n_val_database=max(1, ndb // 2))


def subset(items: list[Item], ratio: float, seed: int) -> list[Item]:
    if ratio >= 1.0:
        return items
    n = max(2, math.ceil(len(items) * ratio))
    order = list(range(len(items)))
    random.Random(seed + 17).shuffle(order)
    return [items[i] for i in sorted(order[:n])]


def is_siglip(config: dict[str, Any]) -> bool:
    return config.get("backbone", "scratch") == "siglip"


def build_model(config: dict[str, Any], vocab_size: int) -> Hasher:
    """The scratch encoders (vocab_size = the char tokenizer's) or, for backbone=siglip, the
    towers loaded from backbone_path (vocab_size unused: the text model's own applies)."""
    if is_siglip(config):
        from .siglip import build_siglip_model

        return build_siglip_model(config)
    return CrossModalHasher(vocab_size, hash_dim=config["hash_dim"], width=config["width"])


def build_tokenizer(config: dict[str, Any], texts: Sequence[str], model=None,
                    info: Callable[[str], None] | None = None):
    """A char tokenizer over ``texts``; backbone=siglip: the model directory's tokenizer when
    it has one (``model`` is the built SiglipHasher's backbone source)."""
    if is_siglip(config):
        from .siglip import build_tokenizer as siglip_tokenizer

        return siglip_tokenizer(config, texts, model.backbone, info)
    return CharTokenizer.build(texts)


def tokenizer_from_state(state: dict[str, Any]):
    if is_siglip(state["config"]):
        from .siglip import tokenizer_from_state as siglip_from_state

        return siglip_from_state(state)
    return CharTokenizer(list(state["vocab"]), int(state["max_len"]))


def save_checkpoint(path: Path, model, tokenizer: Tokenizer, config: dict[str, Any],
                    optimizer=None, scheduler=None, **counters: Any) -> None:
    state = {"model": model.state_dict(), "vocab": tokenizer.vocab,
             "max_len": tokenizer.max_len, "config": dict(config), **counters}
    if optimizer is not None:
        state["optimizer"] = optimizer.state_dict()
    if scheduler is not None:
        state["scheduler"] = scheduler.state_dict()
    tmp = Path(path).with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)  # atomic: a reader never sees half a checkpoint


def load_checkpoint(path: Path) -> tuple[Hasher, Tokenizer, dict[str, Any]]:
    """(model in eval mode, tokenizer, the raw checkpoint dict)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if is_siglip(state["config"]):
        model = build_model(state["config"], 0)
        tok = tokenizer_from_state(state)
    else:
        tok = CharTokenizer(list(state["vocab"]), int(state["max_len"]))
        model = build_model(state["config"], len(tok))
    model.load_state_dict(state["model"])
    model.eval()
    return model, tok, state


@torch.no_grad()
def encode_images(model: Hasher, arrays: Sequence[np.ndarray] | np.ndarray,
                  batch_size: int = 256) -> np.ndarray:
    """Continuous codes h (n, hash_dim) in (-1, 1); the binary code is sign(h)."""
    model.eval()
    out = [model.encode_image(images_to_tensor(np.stack(list(arrays[i:i + batch_size]))))[0]
           for i in range(0, len(arrays), batch_size)]
    return torch.cat(out).numpy() if out else np.zeros((0, model.image_hash.hash_dim), "float32")


@torch.no_grad()
def encode_texts(model: Hasher, tok: Tokenizer, texts: Sequence[str],
                 batch_size: int = 512) -> np.ndarray:
    model.eval()
    out = [model.encode_text(tok.encode_batch(texts[i:i + batch_size]))[0]
           for i in range(0, len(texts), batch_size)]
    return torch.cat(out).numpy() if out else np.zeros((0, model.text_hash.hash_dim), "float32")


def split_captions(items: Sequence[Item]) -> list[str]:
    """One caption per item for evaluation; alternates caption slots (English / Korean)."""
    return [it.caption(i) for i, it in enumerate(items)]
