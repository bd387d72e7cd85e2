"""Encoders and the nested hash layer.

``NestedHashLayer`` maps a feature to ``hash_dim`` continuous values in (-1, 1) (tanh); the
binary code is their sign, taken with a straight-through estimator so gradients pass as if
sign were the identity (clipped to |h| <= 1). One code of ``hash_dim`` bits holds every
shorter code as its prefix: the 8-bit code is ``code[:, :8]``, the 16-bit one ``code[:, :16]``
and so on, and training applies the loss to every prefix so each is a good code by itself.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

ALL_BITS = (8, 16, 32, 64, 128)


def bit_lengths(hash_dim: int) -> tuple[int, ...]:
    return tuple(b for b in ALL_BITS if b <= hash_dim)


class SignSTE(torch.autograd.Function):
    """sign(x) forward (0 -> +1); gradient passed through where |x| <= 1."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x))

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * (x.abs() <= 1).to(grad.dtype)


def sign_ste(x: torch.Tensor) -> torch.Tensor:
    return SignSTE.apply(x)


class NestedHashLayer(nn.Module):
    def __init__(self, in_dim: int, hash_dim: int):
        super().__init__()
        self.hash_dim = hash_dim
        self.proj = nn.Linear(in_dim, hash_dim)

    def forward(self, feat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(continuous h in (-1, 1), binary code in {-1, +1} with STE gradient)."""
        h = torch.tanh(self.proj(feat))
        return h, sign_ste(h)


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class ImageEncoder(nn.Module):
    """A small CNN for 32-64 px images: three stages, global average and max pooling."""

    def __init__(self, width: int = 32, out_dim: int = 256):
        super().__init__()
        w = width
        self.features = nn.Sequential(
            _block(3, w), nn.MaxPool2d(2), _block(w, 2 * w), nn.MaxPool2d(2),
            _block(2 * w, 4 * w), nn.MaxPool2d(2), _block(4 * w, 4 * w))
        self.head = nn.Sequential(nn.Linear(8 * w, out_dim), nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features(x)
        return self.head(torch.cat([f.mean((2, 3)), f.amax((2, 3))], 1))


class TextEncoder(nn.Module):
    """Character embeddings, two 1-D convolutions, masked max pooling."""

    def __init__(self, vocab_size: int, emb_dim: int = 64, width: int = 128, out_dim: int = 256):
        super().__init__()
        self.emb = nn.Embedding(vocab_size, emb_dim, padding_idx=0)
        self.conv1 = nn.Conv1d(emb_dim, width, 3, padding=1)
        self.conv2 = nn.Conv1d(width, width, 5, padding=2)
        self.head = nn.Sequential(nn.Linear(width, out_dim), nn.ReLU(inplace=True))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        mask = (ids != 0).unsqueeze(1)  # (B, 1, T)
        x = self.emb(ids).transpose(1, 2)
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x)) + x
        x = x.masked_fill(~mask, -1e4).amax(2)
        x = torch.where(x < -1e3, torch.zeros_like(x), x)  # all-padding input
        return self.head(x)


class CrossModalHasher(nn.Module):
    def __init__(self, vocab_size: int, hash_dim: int = 128, width: int = 32,
                 feat_dim: int = 256):
        super().__init__()
        self.image_encoder = ImageEncoder(width, feat_dim)
        self.text_encoder = TextEncoder(vocab_size, out_dim=feat_dim)
        self.image_hash = NestedHashLayer(feat_dim, hash_dim)
        self.text_hash = NestedHashLayer(feat_dim, hash_dim)

    def encode_image(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.image_hash(self.image_encoder(images))

    def encode_text(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.text_hash(self.text_encoder(ids))


def images_to_tensor(arrays) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> float (N, 3, H, W) in roughly [-1, 1]."""
    import numpy as np

    x = torch.from_numpy(np.ascontiguousarray(np.asarray(arrays, dtype=np.uint8)))
    return x.permute(0, 3, 1, 2).float().div(127.5).sub(1.0)
