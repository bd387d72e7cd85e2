"""A character-level tokenizer built from caption text, so Korean works with no external vocab.

Korean syllables (and any other script) are single characters after NFC normalisation, so a
vocabulary of the characters seen in the training captions covers English and Korean alike.
The vocabulary is sorted, hence deterministic for a given set of captions, and it is saved in
checkpoints as a plain list of strings. Unknown characters map to ``<unk>``.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

PAD, UNK = "<pad>", "<unk>"


def normalise_text(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).lower().split())


class CharTokenizer:
    def __init__(self, vocab: list[str], max_len: int = 64):
        if vocab[:2] != [PAD, UNK]:
            raise ValueError("vocab must start with <pad>, <unk>")
        self.vocab = list(vocab)
        self.max_len = max_len
        self._index = {ch: i for i, ch in enumerate(self.vocab)}

    @classmethod
    def build(cls, texts: Iterable[str], max_len: int = 64) -> CharTokenizer:
        chars = sorted({ch for t in texts for ch in normalise_text(t)})
        return cls([PAD, UNK, *chars], max_len)

    def __len__(self) -> int:
        return len(self.vocab)

    def encode(self, text: str) -> list[int]:
        """Ids of ``text`` truncated and padded to ``max_len`` (0 is padding)."""
        ids = [self._index.get(ch, 1) for ch in normalise_text(text)[: self.max_len]]
        return ids + [0] * (self.max_len - len(ids))

    def encode_batch(self, texts: Iterable[str]):
        import torch

        return torch.tensor([self.encode(t) for t in texts], dtype=torch.long)
