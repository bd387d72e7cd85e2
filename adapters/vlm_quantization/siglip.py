"""Optional SigLIP backbone (``backbone=siglip``): a local SigLIP model's towers under the hash heads.

Needs the ``siglip`` extra (``pip install 'labdeck[siglip]'``, i.e. transformers). Nothing is
downloaded: the model (and, when present, its tokenizer) load from ``backbone_path`` with
``local_files_only=True``; transformers is imported only here, only when this backbone is used.

* image tower: ``vision_model`` pooled output; the generated images are resized to the model's
  ``vision_config.image_size`` and normalised with mean = std = 0.5 (SigLIP's own
  preprocessing: ``images_to_tensor``'s x / 127.5 - 1 is exactly that).
* text tower: ``text_model`` pooled output. Tokens come from the directory's tokenizer when
  ``AutoTokenizer`` can load one (padded to max_length, as SigLIP was trained); otherwise from
  our character tokenizer with ids taken modulo the text model's vocab size (said in the run
  log; only useful with ``freeze_backbone=false`` or as a smoke test).
* ``NestedHashLayer`` heads on both pooled embeddings, trained with the same losses as the
  scratch path. With ``freeze_backbone`` (the default) only the heads train: the towers run in
  eval mode under ``no_grad`` and the training set is encoded once.

Checkpoints stay ``weights_only``-loadable plain dicts: the heads' weights (plus the towers'
when not frozen), the config (hence ``backbone_path``) and, for the character fallback, the
vocabulary; loading rebuilds the towers from ``backbone_path``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .backbone import backbone_path_problem
from .model import NestedHashLayer
from .tokenizer import CharTokenizer, normalise_text

MAX_TEXT_LEN = 64  # SigLIP's text length; capped by the model's max_position_embeddings


def _transformers():
    try:
        import transformers
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise RuntimeError("backbone=siglip needs transformers: pip install 'labdeck[siglip]'"
                           ) from exc
    transformers.utils.logging.disable_progress_bar()
    return transformers


def load_backbone(path: str) -> Any:  # a transformers model: typed at run time only
    problem = backbone_path_problem(path)
    if problem:
        raise ValueError(f"backbone_path: {problem}")
    tf = _transformers()
    try:
        model = tf.AutoModel.from_pretrained(str(Path(path).expanduser()), local_files_only=True)
    except Exception as exc:  # noqa: BLE001 - re-raised naming the path
        raise ValueError(f"backbone_path: cannot load a SigLIP model from {path}: {exc}") from exc
    if not (hasattr(model, "vision_model") and hasattr(model, "text_model")):
        raise ValueError(f"backbone_path: {path} loaded as {type(model).__name__}, which has no "
                         "vision_model/text_model towers")
    return model


def text_max_len(model: Any) -> int:
    return min(MAX_TEXT_LEN, int(model.config.text_config.max_position_embeddings))


class HFTokenizer:
    """The model directory's own tokenizer behind CharTokenizer's ``encode_batch``."""

    vocab: list[str] = []  # saved as an empty vocabulary: the checkpoint reloads from the path

    def __init__(self, tokenizer: Any, max_len: int):
        self.tokenizer = tokenizer
        self.max_len = max_len

    def __len__(self) -> int:
        return len(self.tokenizer)

    def encode_batch(self, texts: Sequence[str]) -> torch.Tensor:
        out = self.tokenizer([normalise_text(t) for t in texts], padding="max_length",
                             truncation=True, max_length=self.max_len, return_tensors="pt")
        return out["input_ids"].long()


def _hf_tokenizer(path: str, max_len: int) -> HFTokenizer | None:
    tf = _transformers()
    try:
        tok = tf.AutoTokenizer.from_pretrained(str(Path(path).expanduser()),
                                               local_files_only=True)
    except Exception:  # noqa: BLE001 - no (loadable) tokenizer in the directory
        return None
    if tok.pad_token is None and tok.eos_token is not None:
        tok.pad_token = tok.eos_token
    if tok.pad_token is None:  # cannot pad to max_length: use the fallback
        return None
    return HFTokenizer(tok, max_len)


def build_tokenizer(cfg: dict[str, Any], texts: Sequence[str], model: Any,
                    info: Callable[[str], None] | None = None):
    """The directory's tokenizer when it has one, else a character tokenizer (logged)."""
    max_len = text_max_len(model)
    tok = _hf_tokenizer(cfg["backbone_path"], max_len)
    if tok is not None:
        if info:
            info(f"siglip: using the tokenizer in {cfg['backbone_path']} "
                 f"({len(tok)} tokens, max_length {max_len})")
        return tok
    char_tok = CharTokenizer.build(texts, max_len=max_len)
    if info:
        vocab = model.config.text_config.vocab_size
        info(f"siglip: no tokenizer loadable from {cfg['backbone_path']}; falling back to the "
             f"character tokenizer ({len(char_tok)} symbols) with ids taken modulo the text "
             f"model's vocab_size {vocab}")
    return char_tok


def tokenizer_from_state(state: dict[str, Any]):
    vocab = list(state.get("vocab") or [])
    if vocab:
        return CharTokenizer(vocab, int(state["max_len"]))
    tok = _hf_tokenizer(state["config"]["backbone_path"], int(state["max_len"]))
    if tok is None:
        raise ValueError(f"backbone_path: the checkpoint used the tokenizer in "
                         f"{state['config']['backbone_path']}, which no longer loads")
    return tok


class SiglipHasher(nn.Module):
    """SigLIP towers + nested hash heads; the same ``encode_image``/``encode_text`` as
    ``CrossModalHasher``. Both also accept precomputed pooled features (float, 2-D)."""

    def __init__(self, backbone: Any, hash_dim: int, freeze: bool = True):
        super().__init__()
        self.backbone: Any = backbone  # a transformers model: typed at run time only
        self.freeze = freeze
        vcfg, tcfg = backbone.config.vision_config, backbone.config.text_config
        self.image_size = int(vcfg.image_size)
        self.vocab_size = int(tcfg.vocab_size)
        self.image_hash = NestedHashLayer(int(vcfg.hidden_size), hash_dim)
        self.text_hash = NestedHashLayer(int(tcfg.hidden_size), hash_dim)
        if freeze:
            self.backbone.requires_grad_(False)
            self.backbone.eval()

    def train(self, mode: bool = True):
        super().train(mode)
        if self.freeze:
            self.backbone.eval()
        return self

    # -- towers ------------------------------------------------------------------------------

    def image_features(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) in [-1, 1] -> pooled vision embeddings."""
        if images.shape[-1] != self.image_size or images.shape[-2] != self.image_size:
            images = F.interpolate(images, size=(self.image_size, self.image_size),
                                   mode="bilinear", align_corners=False)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze):
            return self.backbone.vision_model(pixel_values=images).pooler_output

    def text_features(self, ids: torch.Tensor) -> torch.Tensor:
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze):
            return self.backbone.text_model(input_ids=ids % self.vocab_size).pooler_output

    @torch.no_grad()
    def precompute(self, images: torch.Tensor, ids: torch.Tensor,
                   batch_size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
        """Pooled features of a whole training set (frozen towers: they never change),
        computed on the model's device and kept in CPU memory, like the set itself."""
        device = next(self.parameters()).device

        def run(fn, x):
            return torch.cat([fn(x[i:i + batch_size].to(device)).float().cpu()
                              for i in range(0, len(x), batch_size)])
        return run(self.image_features, images), run(self.text_features, ids)

    def encode_image(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.image_hash(x if x.dim() == 2 else self.image_features(x))

    def encode_text(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.text_hash(x if x.is_floating_point() else self.text_features(x))

    # -- checkpoints: frozen towers are rebuilt from backbone_path, not stored ---------------

    def state_dict(self, *args, **kwargs):
        full = super().state_dict(*args, **kwargs)
        if not self.freeze:
            return full
        prefix = kwargs.get("prefix", args[1] if len(args) > 1 else "")
        return type(full)((k, v) for k, v in full.items()
                          if not k.startswith(prefix + "backbone."))

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        if not self.freeze:
            return super().load_state_dict(state_dict, strict=strict, assign=assign)
        res = super().load_state_dict(state_dict, strict=False, assign=assign)
        missing = [k for k in res.missing_keys if not k.startswith("backbone.")]
        if strict and (missing or res.unexpected_keys):
            raise RuntimeError(f"hash-head state mismatch: missing {missing}, "
                               f"unexpected {res.unexpected_keys}")
        return res


def build_siglip_model(cfg: dict[str, Any]) -> SiglipHasher:
    return SiglipHasher(load_backbone(cfg["backbone_path"]), cfg["hash_dim"],
                        freeze=bool(cfg.get("freeze_backbone", True)))
