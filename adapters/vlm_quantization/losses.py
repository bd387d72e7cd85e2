"""Training loss: cross-modal contrastive + quantization + bit balance, over every prefix.

For each bit length L (a prefix of the nested code):
- contrastive: image->text and text->image cross-entropy on cosine similarities of the
  continuous codes ``h[:, :L]`` divided by ``temperature``; the target spreads evenly over all
  in-batch items with the same label, or, for multi-hot labels (n, n_labels), every item
  sharing a label and the pair itself (plain CLIP loss when labels are unique);
- quantization: mean (|h| - 1)^2, pulling each value to +-1 so Hamming ranking matches cosine;
- balance: mean over bits of (batch mean of h)^2, so each bit splits the data about 50/50.
Each term is averaged over the bit lengths.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def contrastive(hi: torch.Tensor, ht: torch.Tensor, labels: torch.Tensor,
                temperature: float, text_labels: torch.Tensor | None = None) -> torch.Tensor:
    zi, zt = F.normalize(hi, dim=1), F.normalize(ht, dim=1)
    logits = zi @ zt.t() / temperature
    target = relevant_pairs(labels, text_labels)  # [image i, caption j]
    i2t = -(target / target.sum(1, keepdim=True) * F.log_softmax(logits, 1)).sum(1).mean()
    tt = target.t()
    t2i = -(tt / tt.sum(1, keepdim=True) * F.log_softmax(logits.t(), 1)).sum(1).mean()
    return (i2t + t2i) / 2


def relevant_pairs(labels: torch.Tensor, text_labels: torch.Tensor | None = None
                   ) -> torch.Tensor:
    """(n, n) float 0/1, [image i, caption j]: 1-D labels equal, or 2-D multi-hot rows sharing
    a label (``text_labels``: the captions' own labels, default the images'); the diagonal is
    always 1 (an image and its own caption)."""
    if labels.dim() == 2:
        lt = (labels if text_labels is None else text_labels).float()
        shared = (labels.float() @ lt.t()) > 0
        return (shared | torch.eye(len(labels), dtype=torch.bool, device=labels.device)).float()
    return (labels[:, None] == labels[None, :]).float()


def quantization(h: torch.Tensor) -> torch.Tensor:
    return (h.abs() - 1).pow(2).mean()


def balance(h: torch.Tensor) -> torch.Tensor:
    return h.mean(0).pow(2).mean()


def hash_loss(hi: torch.Tensor, ht: torch.Tensor, labels: torch.Tensor, bits: tuple[int, ...],
              temperature: float, quantization_weight: float,
              balance_weight: float, text_labels: torch.Tensor | None = None
              ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """(total loss, its detached parts). The parts stay tensors: reading one (``float``)
    waits for a GPU, so the training loop does it only on the steps it logs."""
    c = q = b = hi.new_zeros(())
    for L in bits:
        pi, pt = hi[:, :L], ht[:, :L]
        c = c + contrastive(pi, pt, labels, temperature, text_labels)
        q = q + (quantization(pi) + quantization(pt)) / 2
        b = b + (balance(pi) + balance(pt)) / 2
    n = len(bits)
    c, q, b = c / n, q / n, b / n
    total = c + quantization_weight * q + balance_weight * b
    return total, {"contrastive": c.detach(), "quantization": q.detach(),
                   "balance": b.detach()}
