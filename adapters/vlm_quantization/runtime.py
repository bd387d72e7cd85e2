"""Shared torch-side plumbing: the job's device, dataset loading from a config, checkpoints,
batch encoding.

Devices: a job computes on the device its reporter gives (``reporter.device``: "cpu", or
"cuda" for the first of the GPUs the scheduler made visible); a "cuda" job on a machine where
torch sees no GPU fails at once with ``DeviceUnavailable`` saying why, never deep in torch.
Training runs the encoders under autocast on CUDA (bfloat16 where the GPU supports it, else
float16 with loss scaling) and computes the loss in float32; encoding for evaluation, indexes
and search stays float32, so codes do not depend on the GPU's precision. Never on the CPU.

Checkpoints are plain dicts (state_dicts, the config, the tokenizer vocabulary, counters) so
they load with ``torch.load(..., weights_only=True)``. They hold CPU tensors and load with
``map_location="cpu"`` before moving to the device asked for, so a model trained on a GPU
searches on a CPU-only machine and back. Encoding runs on the model's device and returns
numpy arrays.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from adapters.base import reporter_device

from .data import Dataset, Item, load_folder, synthetic_dataset
from .model import CrossModalHasher, images_to_tensor
from .tokenizer import CharTokenizer

if TYPE_CHECKING:
    from .siglip import HFTokenizer, SiglipHasher

    Hasher = CrossModalHasher | SiglipHasher
    Tokenizer = CharTokenizer | HFTokenizer


class DeviceUnavailable(RuntimeError):
    """The job was given a device this process cannot compute on."""


def resolve_device(name: str) -> torch.device:
    """``name`` ("cpu", "cuda", "cuda:1") as a torch device this process can use, or
    DeviceUnavailable saying why not."""
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError) as exc:
        raise DeviceUnavailable(f"unknown device {name!r} ({exc})") from None
    if device.type == "cpu":
        return device
    if device.type != "cuda":
        raise DeviceUnavailable(f"device {name!r}: vlm_quantization computes on cpu or cuda")
    if not torch.cuda.is_available():
        build = (f"built for CUDA {torch.version.cuda}" if torch.version.cuda
                 else "a CPU-only build")
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        raise DeviceUnavailable(
            f"this job was given device {name!r} but torch sees no CUDA GPU (torch "
            f"{torch.__version__}, {build}; CUDA_VISIBLE_DEVICES={visible!r}): install a CUDA "
            "build of torch where the job runs, or run it on the CPU (--gpus 0)")
    index = 0 if device.index is None else device.index
    count = torch.cuda.device_count()
    if index >= count:
        raise DeviceUnavailable(f"device {name!r}: this process sees {count} CUDA device(s)")
    return torch.device("cuda", index)


def job_device(reporter) -> torch.device:
    """The device the job was given (``reporter.device``; "cpu" for a reporter without one)."""
    return resolve_device(reporter_device(reporter))


def describe_device(device: torch.device) -> str:
    """A line for the run's log: which device, and on CUDA which GPU (its UUID: a check can
    compare it with the one the scheduler assigned) and how many the process sees."""
    if device.type != "cuda":
        return f"device {device}"
    props = torch.cuda.get_device_properties(device)
    uuid = str(getattr(props, "uuid", "") or "")
    if uuid and not uuid.startswith(("GPU-", "MIG-")):
        uuid = "GPU-" + uuid  # NVML's spelling
    return (f"device {device}: {props.name}" + (f" ({uuid})" if uuid else "")
            + f"; {torch.cuda.device_count()} visible CUDA device(s); mixed precision "
            + str(amp_dtype(device)).removeprefix("torch."))


def amp_dtype(device: torch.device) -> torch.dtype | None:
    """The autocast type on ``device``: bfloat16 on a CUDA GPU that supports it, else
    float16; None (no autocast) on the CPU."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def autocast(device: torch.device):
    """Mixed precision for the forward pass on CUDA; nothing on the CPU."""
    dtype = amp_dtype(device)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def grad_scaler(device: torch.device) -> torch.amp.GradScaler:
    """Loss scaling, needed with float16 only; a pass-through otherwise."""
    return torch.amp.GradScaler(device.type, enabled=amp_dtype(device) == torch.float16)


def load_dataset(config: dict[str, Any], info: Callable[[str], None] | None = None,
                 progress: Callable[[float, str], None] | None = None) -> Dataset:
    if config["dataset"] == "openmoji":
        from .openmoji import load_openmoji

        return load_openmoji(config["n_query"], config["image_size"],
                             limit=config.get("openmoji_limit", 0), info=info, progress=progress)
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


def _on_cpu(value: Any) -> Any:
    """``value`` (a state dict, nested) with every tensor copied to the CPU."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, dict):
        return type(value)((k, _on_cpu(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return type(value)(_on_cpu(v) for v in value)
    return value


def save_checkpoint(path: Path, model, tokenizer: Tokenizer, config: dict[str, Any],
                    optimizer=None, scheduler=None, scaler=None, **counters: Any) -> None:
    """Write a checkpoint of CPU tensors, whatever device the model is on."""
    state = {"model": model.state_dict(), "vocab": tokenizer.vocab,
             "max_len": tokenizer.max_len, "config": dict(config), **counters}
    if optimizer is not None:
        state["optimizer"] = optimizer.state_dict()
    if scheduler is not None:
        state["scheduler"] = scheduler.state_dict()
    if scaler is not None and scaler.is_enabled():
        state["scaler"] = scaler.state_dict()
    tmp = Path(path).with_suffix(".tmp")
    torch.save(_on_cpu(state), tmp)
    tmp.replace(path)  # atomic: a reader never sees half a checkpoint


def load_checkpoint(path: Path, device: torch.device | str = "cpu",
                    ) -> tuple[Hasher, Tokenizer, dict[str, Any]]:
    """(model in eval mode on ``device``, tokenizer, the raw checkpoint dict, on the CPU)."""
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
    model.to(device)
    model.eval()
    return model, tok, state


def model_device(model: Hasher) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def encode_images(model: Hasher, arrays: Sequence[np.ndarray] | np.ndarray,
                  batch_size: int = 256) -> np.ndarray:
    """Continuous codes h (n, hash_dim) in (-1, 1); the binary code is sign(h). Computed on
    the model's device, in float32."""
    model.eval()
    device = model_device(model)
    out = [model.encode_image(images_to_tensor(np.stack(list(arrays[i:i + batch_size])))
                              .to(device))[0].float().cpu()
           for i in range(0, len(arrays), batch_size)]
    return torch.cat(out).numpy() if out else np.zeros((0, model.image_hash.hash_dim), "float32")


@torch.no_grad()
def encode_texts(model: Hasher, tok: Tokenizer, texts: Sequence[str],
                 batch_size: int = 512) -> np.ndarray:
    model.eval()
    device = model_device(model)
    out = [model.encode_text(tok.encode_batch(texts[i:i + batch_size]).to(device))[0]
           .float().cpu() for i in range(0, len(texts), batch_size)]
    return torch.cat(out).numpy() if out else np.zeros((0, model.text_hash.hash_dim), "float32")


def split_captions(items: Sequence[Item]) -> list[str]:
    """One caption per item for evaluation; alternates caption slots (English / Korean)."""
    return [it.caption(i) for i, it in enumerate(items)]
