"""Image-caption data for the vlm_quantization adapter: a generated set and a folder loader.

The generated set exists so everything runs offline and is learnable on a CPU in minutes:
coloured shapes at several sizes and positions, rendered with Pillow, each with one English
and one Korean caption drawn from several paraphrase templates. It is deterministic in
``seed``.

Relevance: every item has an integer ``label``; a query and a database item are relevant when
their labels are equal. For the generated set the label is the (shape, colour) pair, so size
and position words are nuisance detail. For a user's folder the label is the image id, so a
caption is relevant only to its own image (the usual COCO-style retrieval protocol).

Splits: ``train`` (list of items) and, for ``val`` and ``test``, a ``query`` part and a
``database`` part (``Split``). numpy and Pillow only; no torch.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

SHAPES = ("circle", "square", "triangle", "diamond", "cross", "star")
COLOURS = {  # name -> RGB
    "red": (220, 30, 30), "green": (30, 180, 40), "blue": (40, 70, 230),
    "yellow": (235, 220, 30), "purple": (150, 40, 190), "orange": (245, 140, 20),
}
SIZES = ("small", "large")
POSITIONS = ("left", "right", "top", "bottom", "centre")

EN_SHAPE = {"circle": ("circle", "disc", "round dot"), "square": ("square", "box"),
            "triangle": ("triangle",), "diamond": ("diamond", "rhombus"),
            "cross": ("cross", "plus sign"), "star": ("star",)}
EN_SIZE = {"small": ("small", "little", "tiny"), "large": ("large", "big")}
EN_POS = {"left": "on the left", "right": "on the right", "top": "at the top",
          "bottom": "at the bottom", "centre": "in the middle"}
EN_TEMPLATES = (
    "a {size} {colour} {shape} {pos}",
    "a picture of a {colour} {shape}",
    "there is a {size} {shape} that is {colour} {pos}",
    "{colour} {shape}, {size}, {pos}",
    "an image showing one {colour} {shape}",
)
KO_SHAPE = {"circle": ("원", "동그라미"), "square": ("사각형", "네모"), "triangle": ("삼각형", "세모"),
            "diamond": ("마름모",), "cross": ("십자가", "십자 모양"), "star": ("별", "별 모양")}
KO_COLOUR = {"red": ("빨간", "빨간색"), "green": ("초록", "초록색"), "blue": ("파란", "파란색"),
             "yellow": ("노란", "노란색"), "purple": ("보라", "보라색"), "orange": ("주황", "주황색")}
KO_SIZE = {"small": ("작은",), "large": ("큰",)}
KO_POS = {"left": "왼쪽에", "right": "오른쪽에", "top": "위쪽에", "bottom": "아래쪽에",
          "centre": "가운데에"}
KO_TEMPLATES = (
    "{pos} 있는 {size} {colour} {shape}",
    "{colour} {shape} 그림",
    "{size} {colour} {shape} 하나가 {pos} 있다",
    "{colour} {shape}, {size}, {pos}",
    "{colour} {shape}이 보이는 이미지",
)


@dataclass
class Item:
    item_id: str
    captions: list[str]
    label: int
    image: np.ndarray | None = None  # HxWx3 uint8 (generated set)
    path: Path | None = None  # file on disk (folder set)
    labels: tuple[int, ...] | None = None  # multi-label sets: relevant when they share one
    thumb: np.ndarray | None = None  # a larger rendering for thumbnails, where one exists
    char: str = ""  # the emoji itself (OpenMoji set)
    # training-only short captions with their own labels ("cat" -> {cat}), multi-label sets
    word_captions: list[tuple[str, tuple[int, ...]]] = field(default_factory=list)

    def caption(self, i: int = 0) -> str:
        return self.captions[i % len(self.captions)]

    def pixels(self) -> np.ndarray:
        """The item's image; items of every set have it loaded by the time a model sees them."""
        if self.image is None:
            raise ValueError(f"item {self.item_id} has no image loaded")
        return self.image


def label_arrays(*groups: list[Item]) -> list[np.ndarray]:
    """Relevance labels of each group of items, comparable across the groups: 1-D int labels
    when every item has one label (relevant = equal), else (n, n_labels) bool multi-hot rows
    (relevant = share a label; an item with no label is relevant to nothing)."""
    if all(it.labels is None for g in groups for it in g):
        return [np.array([it.label for it in g], dtype=np.int64) for g in groups]
    width = label_width(*groups)
    return [multi_hot([it.labels if it.labels is not None else (it.label,) for it in g], width)
            for g in groups]


def label_width(*groups: list[Item]) -> int:
    """One more than the largest label id any item (or word caption) of ``groups`` carries."""
    ids = [i for g in groups for it in g
           for i in (*(it.labels or (it.label,)), *(x for _, w in it.word_captions for x in w))]
    return 1 + max(ids, default=0)


def training_captions(items: list[Item]) -> tuple[list[str], list[int], list | None]:
    """Every caption a training step may pair with each item, flattened: (texts, how many
    belong to each item, each caption's labels or None for single-label sets). A multi-label
    item's own captions carry its labels; its word captions carry theirs, so "cat" is trained
    to be relevant to every cat and not to every face that cat face shares a label with."""
    texts: list[str] = []
    counts: list[int] = []
    multi = any(it.labels is not None for it in items)
    labels: list[tuple[int, ...]] = []
    for it in items:
        own = it.labels if it.labels is not None else (it.label,)
        texts += it.captions
        labels += [own] * len(it.captions)
        for text, labs in it.word_captions:
            texts.append(text)
            labels.append(labs)
        counts.append(len(it.captions) + len(it.word_captions))
    return texts, counts, (labels if multi else None)


def multi_hot(rows: list[tuple[int, ...]], width: int) -> np.ndarray:
    hot = np.zeros((len(rows), max(width, 1)), dtype=bool)
    for r, ids in enumerate(rows):
        hot[r, [i for i in ids if i >= 0]] = True
    return hot


@dataclass
class Split:
    query: list[Item]
    database: list[Item]


@dataclass
class Dataset:
    train: list[Item]
    val: Split
    test: Split
    skipped: list[str] = field(default_factory=list)  # "file: reason" for bad folder items


def caption_for(rng: random.Random, shape: str, colour: str, size: str, pos: str,
                korean: bool) -> str:
    if korean:
        tpl = rng.choice(KO_TEMPLATES)
        return tpl.format(shape=rng.choice(KO_SHAPE[shape]), colour=rng.choice(KO_COLOUR[colour]),
                          size=rng.choice(KO_SIZE[size]), pos=KO_POS[pos])
    tpl = rng.choice(EN_TEMPLATES)
    text = tpl.format(shape=rng.choice(EN_SHAPE[shape]), colour=colour,
                      size=rng.choice(EN_SIZE[size]), pos=EN_POS[pos])
    return text.replace("a orange", "an orange")


def _polygon(shape: str, cx: float, cy: float, r: float) -> list[tuple[float, float]]:
    if shape == "square":
        return [(cx - r, cy - r), (cx + r, cy - r), (cx + r, cy + r), (cx - r, cy + r)]
    if shape == "triangle":
        return [(cx, cy - r), (cx + r, cy + r * 0.85), (cx - r, cy + r * 0.85)]
    if shape == "diamond":
        return [(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)]
    if shape == "cross":
        w = r * 0.38
        return [(cx - w, cy - r), (cx + w, cy - r), (cx + w, cy - w), (cx + r, cy - w),
                (cx + r, cy + w), (cx + w, cy + w), (cx + w, cy + r), (cx - w, cy + r),
                (cx - w, cy + w), (cx - r, cy + w), (cx - r, cy - w), (cx - w, cy - w)]
    if shape == "star":
        pts = []
        for k in range(10):
            ang = -np.pi / 2 + k * np.pi / 5
            rad = r if k % 2 == 0 else r * 0.45
            pts.append((cx + rad * np.cos(ang), cy + rad * np.sin(ang)))
        return pts
    raise ValueError(shape)


def render(shape: str, colour: str, size: str, pos: str, image_size: int,
           rng: random.Random) -> np.ndarray:
    """Draw one shape at 2x resolution and downsample (cheap anti-aliasing)."""
    s = image_size * 2
    bg = tuple(rng.randint(0, 50) for _ in range(3))
    img = Image.new("RGB", (s, s), bg)
    r = s * (rng.uniform(0.28, 0.34) if size == "large" else rng.uniform(0.15, 0.19))
    off = s / 2 - r - 1
    jitter = s * 0.04
    cx, cy = {"left": (s / 2 - off, s / 2), "right": (s / 2 + off, s / 2),
              "top": (s / 2, s / 2 - off), "bottom": (s / 2, s / 2 + off),
              "centre": (s / 2, s / 2)}[pos]
    cx += rng.uniform(-jitter, jitter)
    cy += rng.uniform(-jitter, jitter)
    fill = tuple(int(min(255, max(0, c + rng.randint(-15, 15)))) for c in COLOURS[colour])
    draw = ImageDraw.Draw(img)
    if shape == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
    else:
        draw.polygon(_polygon(shape, cx, cy, r), fill=fill)
    img = img.resize((image_size, image_size), Image.Resampling.BILINEAR)
    return np.asarray(img, dtype=np.uint8)


def generate_items(n: int, seed: int, image_size: int = 32, prefix: str = "s") -> list[Item]:
    """``n`` items, each with an English and a Korean caption (order random per item)."""
    rng = random.Random(seed)
    colours = tuple(COLOURS)
    items = []
    for i in range(n):
        si, ci = rng.randrange(len(SHAPES)), rng.randrange(len(colours))
        shape, colour = SHAPES[si], colours[ci]
        size, pos = rng.choice(SIZES), rng.choice(POSITIONS)
        caps = [caption_for(rng, shape, colour, size, pos, korean=False),
                caption_for(rng, shape, colour, size, pos, korean=True)]
        if rng.random() < 0.5:
            caps.reverse()
        image = render(shape, colour, size, pos, image_size, rng)
        items.append(Item(f"{prefix}{i:05d}", caps, si * len(colours) + ci, image=image))
    return items


def synthetic_dataset(n_train: int, n_query: int, n_database: int, seed: int,
                      image_size: int = 32, n_val_query: int | None = None,
                      n_val_database: int | None = None) -> Dataset:
    """Train, val and test sets drawn from independent seeded streams."""
    nvq = n_val_query if n_val_query is not None else n_query
    nvd = n_val_database if n_val_database is not None else n_database
    train = generate_items(n_train, seed * 7919 + 1, image_size, "tr")
    val = generate_items(nvq + nvd, seed * 7919 + 2, image_size, "va")
    test = generate_items(n_query + n_database, seed * 7919 + 3, image_size, "te")
    return Dataset(train, Split(val[:nvq], val[nvq:]), Split(test[:n_query], test[n_query:]))


# ----------------------------------------------------------------------------- folder loader


def load_image(path: Path, image_size: int) -> np.ndarray:
    """RGB uint8 array of ``path`` resized to a square (transparency on white); raises
    OSError/ValueError if unreadable."""
    with Image.open(path) as opened:
        im: Image.Image = opened
        if im.mode in ("RGBA", "LA", "P") and (im.mode != "P" or "transparency" in im.info):
            # transparent pixels count as white (as a viewer shows them), not black
            rgba = im.convert("RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            im = Image.alpha_composite(white, rgba)
        rgb = im.convert("RGB").resize((image_size, image_size), Image.Resampling.BILINEAR)
        return np.asarray(rgb, dtype=np.uint8)


def load_folder(data_dir: Path, captions_file: Path, seed: int, image_size: int,
                val_fraction: float = 0.1, test_fraction: float = 0.2,
                info: Callable[[str], None] | None = None) -> Dataset:
    """A user's images folder plus a COCO-style captions JSON.

    Bad items (missing or unreadable image, empty caption, unknown image id) are skipped and
    reported by file name through ``info`` and ``Dataset.skipped``. Images are decoded once
    here, so a bad file can never fail an epoch half-way.
    """
    data_dir, captions_file = Path(data_dir), Path(captions_file)
    if not captions_file.is_absolute() and not captions_file.exists():
        captions_file = data_dir / captions_file
    try:
        spec = json.loads(captions_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read captions file {captions_file}: {exc}") from exc
    skipped: list[str] = []

    def skip(msg: str) -> None:
        skipped.append(msg)
        if info:
            info(f"skipped {msg}")

    caps: dict[object, list[str]] = {}
    for ann in spec.get("annotations", []):
        text = str(ann.get("caption") or "").strip()
        if not text:
            skip(f"annotation for image id {ann.get('image_id')!r}: empty caption")
            continue
        caps.setdefault(ann.get("image_id"), []).append(text)
    items: list[Item] = []
    root = data_dir.resolve()
    for img in spec.get("images", []):
        name = str(img.get("file_name", ""))
        path = (data_dir / name).resolve()
        if not name or root not in path.parents:
            skip(f"{name!r}: file name outside the data folder")
            continue
        if img.get("id") not in caps:
            skip(f"{name}: no non-empty caption")
            continue
        try:
            array = load_image(path, image_size)
        except (OSError, ValueError) as exc:
            reason = "missing" if not path.exists() else f"unreadable ({type(exc).__name__})"
            skip(f"{name}: image {reason}")
            continue
        items.append(Item(str(img.get("id")), caps[img["id"]], len(items), image=array,
                          path=path))
    if len(items) < 3:
        raise ValueError(f"only {len(items)} usable items in {captions_file}; need at least 3")
    order = list(range(len(items)))
    random.Random(seed).shuffle(order)
    shuffled = [items[i] for i in order]
    n_test = max(1, int(len(items) * test_fraction))
    n_val = max(1, int(len(items) * val_fraction))
    val, test = shuffled[:n_val], shuffled[n_val:n_val + n_test]
    train = shuffled[n_val + n_test:] or shuffled[:]
    # each image is its own class: the query and database parts share items (i2t asks for the
    # image's captions, t2i for the caption's image), as in COCO-style retrieval evaluation
    return Dataset(train, Split(val, val), Split(test, test), skipped)
