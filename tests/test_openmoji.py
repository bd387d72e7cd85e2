"""The real image-caption set (dataset=openmoji): captions in English and Korean from the emoji
package's names, labels from their content words, a fixed split by emoji that never trains on a
query, SVGs rendered once and cached, multi-label relevance in the metrics and the loss, and a
small slice through train -> eval -> index -> search with the attribution shown."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from adapters.vlm_quantization import VLMQuantizationAdapter
from adapters.vlm_quantization import openmoji as om
from adapters.vlm_quantization.data import label_arrays, load_image, training_captions
from adapters.vlm_quantization.losses import relevant_pairs
from adapters.vlm_quantization.metrics import retrieval_scores
from adapters.vlm_quantization.quality import LocalReporter

SLICE = {"dataset": "openmoji", "openmoji_limit": 160, "n_query": 30, "image_size": 16,
         "epochs": 2, "batch_size": 32, "num_threads": 2, "log_every": 1}


def _by_char(char: str) -> om.Emoji:
    return next(e for e in om.catalogue() if e.char.replace("\ufe0f", "") == char)


def test_catalogue_names_in_english_and_korean() -> None:
    emojis = om.catalogue()
    assert len(emojis) > 3500
    cat = _by_char("🐱")
    assert cat.name_en == "cat face" and cat.name_ko == "고양이 얼굴"
    caps = om.captions_of(cat)
    assert "cat face" in caps and "고양이 얼굴" in caps
    assert any(c != "cat face" and "cat" in c for c in caps)  # aliases and paraphrases
    assert any("고양이 얼굴" in c and c != "고양이 얼굴" for c in caps)
    heart = _by_char("❤")
    assert heart.name_en == "red heart" and "하트" in heart.name_ko
    korea = _by_char("🇰🇷")
    assert korea.flag and any(c.startswith("flag of") for c in om.captions_of(korea))


def test_labels_are_shared_content_words() -> None:
    vocab = om.label_vocabulary()
    assert {"cat", "heart", "face", "flag", "arrow"} <= set(vocab)
    assert not {"with", "of", "the", "button"} & set(vocab)
    assert "hands" not in vocab and "hand" in vocab  # plurals fold into the singular
    bases = {e.code: e for e in om.catalogue() if not e.skin_tone}
    names = lambda e: {vocab[i] for i in om.labels_of(e, bases)}  # noqa: E731
    assert {"cat", "face"} <= names(_by_char("🐱"))
    assert "flag" in names(_by_char("🇰🇷"))
    wave = next(e for e in om.catalogue() if e.skin_tone and e.base == "1F44B")
    assert names(wave) == names(bases["1F44B"])  # a variant takes its base's labels


def test_split_never_trains_on_a_query() -> None:
    ds = om.load_openmoji(n_query=100, image_size=16)
    groups = lambda items: {om._by_code()[it.item_id].base for it in items}  # noqa: E731
    train = groups(ds.train)
    for split in (ds.test, ds.val):
        assert split.query and not groups(split.query) & train  # nor a skin-tone variant
        assert not {it.item_id for it in split.query} & {it.item_id for it in split.database}
        assert all(it.labels for it in split.query)  # every query has an answer
    assert not groups(ds.test.query) & groups(ds.val.query)
    assert {it.item_id for it in ds.test.database} <= {it.item_id for it in ds.train}
    # fixed: the same queries whatever the config's seed or the image size
    again = om.load_openmoji(n_query=100, image_size=16)
    assert [it.item_id for it in again.test.query] == [it.item_id for it in ds.test.query]
    # a slice is a prefix of the same order
    small = om.load_openmoji(n_query=10, image_size=16, limit=80)
    assert len({it.item_id for it in small.train} | {it.item_id for it in small.test.query}) < 200


def test_rendered_once_and_cached(render_cache) -> None:
    seen: list[str] = []
    first = om.rendered(16, progress=lambda f, m: seen.append(m))
    assert first.shape == (len(om.catalogue()), 16, 16, 3) and first.dtype == np.uint8
    cached = render_cache / f"openmoji-{om.version()}" / "rgb16.npy"
    assert cached.is_file()
    seen.clear()
    again = om.rendered(16, progress=lambda f, m: seen.append(m))
    assert np.array_equal(first, again) and not seen  # from the cache, no rendering
    cat = first[[e.code for e in om.catalogue()].index("1F431")]
    assert cat[0, 0].tolist() == [255, 255, 255]  # drawn on white
    assert (cat.reshape(-1, 3) != 255).any(axis=1).mean() > 0.2  # and something drawn


def test_multi_label_relevance_and_loss_targets() -> None:
    # labels: q0 {0}, q1 {1, 2}; db: {0}, {2}, {}, {0, 1}
    q = np.array([[1, 0, 0], [0, 1, 1]], dtype=bool)
    db = np.array([[1, 0, 0], [0, 0, 1], [0, 0, 0], [1, 1, 0]], dtype=bool)
    dist = np.array([[0, 1, 2, 3], [0, 1, 2, 3]], dtype=float)
    s = retrieval_scores(dist, q, db, ks=(1, 2))
    # q0: relevant at ranks 1 and 4 -> AP (1 + 2/4) / 2; q1: ranks 2 and 4 -> (1/2 + 2/4) / 2
    assert s["map"] == pytest.approx(((1 + 0.5) / 2 + (0.5 + 0.5) / 2) / 2)
    assert s["p@1"] == pytest.approx(0.5) and s["p@2"] == pytest.approx(0.5)
    t = relevant_pairs(torch.tensor(db))
    assert t.tolist() == [[1, 0, 0, 1], [0, 1, 0, 0], [0, 0, 1, 0], [1, 0, 0, 1]]


def test_label_arrays_mix_single_and_multi() -> None:
    ds = om.load_openmoji(n_query=20, image_size=16, limit=100)
    q, db = label_arrays(ds.test.query, ds.test.database)
    assert q.dtype == bool and q.shape[1] == db.shape[1] and q.any(axis=1).all()


def test_image_query_transparency_is_white(tmp_path) -> None:
    img = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    img.putpixel((0, 0), (255, 0, 0, 255))
    img.save(tmp_path / "a.png")
    arr = load_image(tmp_path / "a.png", 8)
    assert arr[7, 7].tolist() == [255, 255, 255] and arr[0, 0].tolist() == [255, 0, 0]


def test_small_slice_trains_evaluates_and_searches(tmp_path) -> None:
    adapter = VLMQuantizationAdapter()
    cfg = adapter.validate_config(SLICE)
    rep = LocalReporter(tmp_path / "run", quiet=True)
    result = adapter.train(cfg, rep)
    assert result["epochs_done"] == 2 and result["train_items"] > 100
    ev = adapter.evaluate(cfg, rep.checkpoint_path("best.pt"), rep)
    assert ev.data["relevance"].startswith("shares a label")
    assert {r["bits"] for r in ev.data["rows"]} == {8, 16, 32, 64, 128}
    assert all(0.0 <= r["map_i2t"] <= 1.0 for r in ev.data["rows"])
    adapter.build_index(cfg, rep.checkpoint_path("best.pt"), tmp_path / "index", rep)
    index = adapter.load_index(tmp_path / "index")
    assert index.meta["attribution"] == om.ATTRIBUTION
    hits = adapter.search_by_text(index, "고양이", k=5)
    assert len(hits) == 5 and all(h.extra["credit"] == om.ATTRIBUTION for h in hits)
    with Image.open(hits[0].image_path) as thumb:
        assert thumb.size == (64, 64)  # rendered at thumbnail size, not blown up from 16 px
    samples = adapter.sample_images(tmp_path / "samples")
    assert len(samples) >= 3
    by_image = adapter.search_by_image(index, samples[0], k=3)
    assert len(by_image) == 3 and by_image[0].text


def test_word_captions_carry_their_own_labels() -> None:
    vocab = om.label_vocabulary()
    ko = om.korean_word_labels()
    assert [vocab[i] for i in ko["고양이"]] == ["cat"] and [vocab[i] for i in ko["하트"]] == ["heart"]
    bases = {e.code: e for e in om.catalogue() if not e.skin_tone}
    words = dict(om.word_captions(bases["1F63A"], bases))  # grinning cat
    assert vocab[words["cat"][0]] == "cat" and words["고양이"] == ko["고양이"]
    # in training a word caption is relevant to the images with its label only
    ds = om.load_openmoji(n_query=20, image_size=16, limit=200)
    texts, counts, labels = training_captions(ds.train)
    assert len(texts) == sum(counts) == len(labels)
    assert sum(counts) > sum(len(it.captions) for it in ds.train)  # the words were added
    img = torch.tensor([[1, 1, 0], [0, 1, 0]], dtype=torch.bool)  # cat face, grinning face
    txt = torch.tensor([[1, 0, 0], [0, 1, 0]], dtype=torch.bool)  # "cat", "face"
    assert relevant_pairs(img, txt).tolist() == [[1, 1], [0, 1]]  # "cat" is not the face
