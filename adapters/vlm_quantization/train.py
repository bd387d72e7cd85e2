"""The training loop: contrastive hashing over every prefix, with reporting and resume.

The quantization and balance weights ramp linearly from 0 over the first ``reg_warmup``
fraction of the steps: pulling codes to +-1 before the encoders separate the classes
saturates tanh and slows learning (measured: 64-bit mAP 0.92 -> 0.97 on a short run).

Per step: ``train/loss`` (and its parts ``train/loss_<part>``) every ``log_every`` steps, ``progress`` every step,
``should_stop()`` checked before every step (on stop: save ``last.pt`` and return), and so is
the time limit ``timeout_s`` (on expiry: save ``last.pt``, fail "timed out after N s"). Per epoch:
``val/loss``, ``val/map_i2t_<bits>``, ``val/map_t2i_<bits>`` (Hamming) for every bit length,
``val/map_<bits>`` (the mean of both directions; the default objective uses 64), then
``last.pt`` and, when the objective improves, ``best.pt``.

On the job's device (``reporter.device``; runtime.py): the model and each batch move there,
the encoders run under autocast on CUDA, the loss is float32; the training set stays in CPU
memory.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .data import Split, label_arrays, multi_hot, training_captions
from .evaluation import encode_split, score_codes
from .losses import hash_loss
from .model import bit_lengths, images_to_tensor
from .runtime import (
    autocast,
    build_model,
    build_tokenizer,
    describe_device,
    grad_scaler,
    is_siglip,
    job_device,
    load_dataset,
    model_device,
    save_checkpoint,
    split_captions,
    subset,
    tokenizer_from_state,
)
from .siglip import SiglipHasher

OBJECTIVE_BITS = 64


def augment(images: torch.Tensor, strength: float, gen: torch.Generator) -> torch.Tensor:
    """A random zoom (1 +- strength) and shift (+- strength of the side) per image, the edge
    pixels repeated outward (white around an emoji): the picture, not its place, is what a
    caption names."""
    if strength <= 0:
        return images
    n = images.shape[0]
    u = torch.rand(n, 3, generator=gen) * 2 - 1
    scale = 1 + strength * u[:, 0]
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = scale
    theta[:, :, 2] = strength * u[:, 1:]
    grid = F.affine_grid(theta.to(images.device), list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, padding_mode="border", align_corners=False)


def _lr_lambda(total_steps: int, warmup: int):
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        t = (step - warmup) / max(1, total_steps - warmup)
        return 0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))
    return f


@torch.no_grad()
def _val_loss(model, tok, split: Split, cfg: dict[str, Any], bits) -> float:
    items = split.database
    caps = split_captions(items)
    device = model_device(model)
    total, n = 0.0, 0
    for i in range(0, len(items), 256):
        chunk = items[i:i + 256]
        if len(chunk) < 2:
            continue
        hi, _ = model.encode_image(
            images_to_tensor(np.stack([it.pixels() for it in chunk])).to(device))
        ht, _ = model.encode_text(tok.encode_batch(caps[i:i + 256]).to(device))
        labels = torch.from_numpy(label_arrays(chunk)[0]).to(device)
        loss, _ = hash_loss(hi, ht, labels, bits, cfg["temperature"],
                            cfg["quantization_weight"], cfg["balance_weight"])
        total, n = total + float(loss) * len(chunk), n + len(chunk)
    return total / max(n, 1)


def train(cfg: dict[str, Any], reporter, resume_from: Path | None = None) -> dict[str, Any]:
    t0 = time.time()
    device = job_device(reporter)  # before any work: a device this process lacks fails now
    deadline = time.monotonic() + cfg["timeout_s"] if cfg["timeout_s"] else None
    if cfg["num_threads"] > 0:
        torch.set_num_threads(cfg["num_threads"])
    torch.manual_seed(cfg["seed"])
    gen, aug_gen = torch.Generator(), torch.Generator()
    data = load_dataset(cfg, info=reporter.info, progress=reporter.progress)
    items = subset(data.train, cfg["subset_ratio"], cfg["seed"])
    state = None
    # backbone=siglip: the towers load first (the tokenizer depends on them)
    model = build_model(cfg, 0) if is_siglip(cfg) else None
    if resume_from is not None:
        state = torch.load(Path(resume_from), map_location="cpu", weights_only=True)
        tok = tokenizer_from_state(state)
    else:
        tok = build_tokenizer(cfg, training_captions(items)[0], model, reporter.info)
    bits = bit_lengths(cfg["hash_dim"])
    if model is None:
        model = build_model(cfg, len(tok))
    else:
        reporter.info(f"backbone siglip from {cfg['backbone_path']} "
                      f"({'frozen: training the hash heads only' if model.freeze else 'fine-tuned'}"
                      f"; images resized to {model.image_size} px)")
    model.to(device)
    reporter.info(describe_device(device))
    images = images_to_tensor(np.stack([it.pixels() for it in items]))
    texts, counts, text_label_rows = training_captions(items)
    cap_ids = tok.encode_batch(texts)
    cap_start = torch.tensor(np.cumsum([0] + counts)[:-1])
    cap_count = torch.tensor(counts)
    labels = torch.from_numpy(label_arrays(items)[0])
    cap_labels = (None if text_label_rows is None else
                  torch.from_numpy(multi_hot(text_label_rows, labels.shape[1])))
    if isinstance(model, SiglipHasher) and model.freeze:  # frozen towers: features are fixed
        reporter.progress(0.0, f"encoding {len(items)} training items with the frozen towers")
        images, cap_ids = model.precompute(images, cap_ids)
    bs = min(cfg["batch_size"], len(items))
    steps_per_epoch = max(1, len(items) // bs)
    epochs = cfg["epochs"]
    total_steps = steps_per_epoch * epochs
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg["lr"],
                            weight_decay=cfg["weight_decay"])
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, _lr_lambda(total_steps, min(100, max(1, total_steps // 10))))
    scaler = grad_scaler(device)
    start_epoch, skip_steps, step, best = 0, 0, 0, -1.0
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        if "scaler" in state and scaler.is_enabled():
            scaler.load_state_dict(state["scaler"])
        start_epoch, skip_steps = int(state["epoch"]), int(state.get("epoch_step", 0))
        step, best = int(state["step"]), float(state["best"])
        reporter.info(f"resumed from {resume_from} at epoch {start_epoch}, step {step}")
    reporter.info(f"training on {len(items)} items, {steps_per_epoch} steps/epoch, bits {bits}")

    def save(name: str, epoch: int, epoch_step: int = 0) -> None:
        save_checkpoint(reporter.checkpoint_path(name), model, tok, cfg, opt, sched, scaler,
                        epoch=epoch, epoch_step=epoch_step, step=step, best=best)
        reporter.checkpoint_saved(name, step)

    epoch, stopped, timed_out, epoch_step = start_epoch, False, False, 0
    for epoch in range(start_epoch, epochs):
        model.train()
        # drawn per epoch from a per-epoch seed, so a resume mid-epoch replays exactly
        gen.manual_seed(cfg["seed"] * 100_003 + epoch)
        perm = torch.randperm(len(items), generator=gen)
        picks = cap_start[perm] + (torch.rand(len(items), generator=gen)
                                   * cap_count[perm]).long()
        first = skip_steps if epoch == start_epoch else 0
        for s in range(first, steps_per_epoch):
            if reporter.should_stop():
                stopped, epoch_step = True, s
                break
            if deadline is not None and time.monotonic() > deadline:
                timed_out, epoch_step = True, s
                break
            idx = perm[s * bs:(s + 1) * bs]
            batch = images[idx]
            if cfg["augment"] > 0 and batch.dim() == 4:  # not on precomputed features
                aug_gen.manual_seed(cfg["seed"] * 1_000_003 + step)  # a resume replays it
                batch = augment(batch, cfg["augment"], aug_gen)
            with autocast(device):
                hi, _ = model.encode_image(batch.to(device, non_blocking=True))
                ht, _ = model.encode_text(
                    cap_ids[picks[s * bs:(s + 1) * bs]].to(device, non_blocking=True))
            ramp = min(1.0, step / max(1.0, cfg["reg_warmup"] * total_steps))
            txt_lab = (None if cap_labels is None
                       else cap_labels[picks[s * bs:(s + 1) * bs]].to(device))
            loss, parts = hash_loss(hi.float(), ht.float(), labels[idx].to(device), bits,
                                    cfg["temperature"], ramp * cfg["quantization_weight"],
                                    ramp * cfg["balance_weight"], txt_lab)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            sched.step()
            step += 1
            if step % cfg["log_every"] == 0 or s == steps_per_epoch - 1:
                reporter.log({"train/loss": float(loss.detach()),
                              "train/lr": sched.get_last_lr()[0],
                              **{f"train/loss_{k}": float(v) for k, v in parts.items()}},
                             step=step, epoch=epoch + (s + 1) / steps_per_epoch)
            reporter.progress((epoch * steps_per_epoch + s + 1) / total_steps,
                              f"epoch {epoch + 1}/{epochs} step {s + 1}/{steps_per_epoch}")
        if stopped:
            save("last.pt", epoch, epoch_step)
            reporter.info(f"stop requested: saved last.pt at epoch {epoch}, step {step}")
            break
        if timed_out:
            save("last.pt", epoch, epoch_step)
            reporter.info(f"time limit: saved last.pt at epoch {epoch}, step {step}")
            raise RuntimeError(f"timed out after {cfg['timeout_s']:g} s")
        model.eval()
        rows = score_codes(encode_split(model, tok, data.val), bits, methods=("hamming",),
                           ks=(10,))
        val = {"val/loss": _val_loss(model, tok, data.val, cfg, bits)}
        for r in rows:
            val[f"val/map_i2t_{r['bits']}"] = r["map_i2t"]
            val[f"val/map_t2i_{r['bits']}"] = r["map_t2i"]
            val[f"val/map_{r['bits']}"] = (r["map_i2t"] + r["map_t2i"]) / 2
        reporter.log(val, step=step, epoch=epoch + 1)
        objective = val[f"val/map_{OBJECTIVE_BITS}"]
        improved = objective >= best
        best = max(best, objective)
        save("last.pt", epoch + 1)
        if improved:
            save("best.pt", epoch + 1)
        reporter.info(f"epoch {epoch + 1}/{epochs}: val/map_{OBJECTIVE_BITS}={objective:.4f} "
                      f"val/loss={val['val/loss']:.4f} ({time.time() - t0:.0f}s)")
    done = epoch if stopped else epochs
    return {"best_val_map_64": best, "epochs_done": done, "steps": step, "stopped": stopped,
            "train_items": len(items), "seconds": round(time.time() - t0, 1)}
