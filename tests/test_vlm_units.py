"""Unit tests of the vlm_quantization pieces: data, tokenizer, codes, metrics, loader."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from adapters.vlm_quantization.data import generate_items, load_folder, synthetic_dataset
from adapters.vlm_quantization.metrics import (
    hamming_distance,
    mean_average_precision,
    precision_at_k,
    retrieval_scores,
)
from adapters.vlm_quantization.model import CrossModalHasher, NestedHashLayer, sign_ste
from adapters.vlm_quantization.tokenizer import CharTokenizer

ROOT = Path(__file__).resolve().parents[1]


def test_import_is_light() -> None:
    code = (
        "import sys\n"
        "from adapters.vlm_quantization import VLMQuantizationAdapter as A\n"
        "A.config_schema().validate({}); A.get_search_ranges(); A().search_options()\n"
        "heavy = [m for m in ('torch', 'numpy', 'PIL') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_generator_is_deterministic() -> None:
    a, b = generate_items(20, seed=3), generate_items(20, seed=3)
    assert [x.captions for x in a] == [x.captions for x in b]
    assert all(np.array_equal(x.image, y.image) for x, y in zip(a, b, strict=True))
    c = generate_items(20, seed=4)
    assert [x.captions for x in a] != [x.captions for x in c]
    ds = synthetic_dataset(30, 5, 10, seed=1, image_size=24)
    assert len(ds.train) == 30 and len(ds.test.query) == 5 and len(ds.test.database) == 10
    assert ds.train[0].image.shape == (24, 24, 3)
    # one English and one Korean caption per item
    assert all(any("\uac00" <= ch <= "\ud7a3" for ch in "".join(x.captions)) for x in a)


def test_tokenizer_handles_korean_and_is_deterministic() -> None:
    texts = ["a red circle", "빨간 원 그림", "파란색 네모"]
    t1, t2 = CharTokenizer.build(texts), CharTokenizer.build(reversed(texts))
    assert t1.vocab == t2.vocab
    ids = t1.encode("빨간 원")
    assert 1 not in ids[:4] and ids[4:] == [0] * (t1.max_len - 4)
    assert t1.encode("zzz 中")[:5] == [1, 1, 1, t1.vocab.index(" "), 1]


def test_ste_sign_forward_and_gradient() -> None:
    x = torch.tensor([-2.0, -0.5, 0.0, 0.5, 2.0], requires_grad=True)
    y = sign_ste(x)
    assert y.tolist() == [-1.0, -1.0, 1.0, 1.0, 1.0]
    (y * torch.arange(1.0, 6.0)).sum().backward()
    assert x.grad.tolist() == [0.0, 2.0, 3.0, 4.0, 0.0]  # identity inside |x| <= 1, else 0
    layer = NestedHashLayer(4, 16)
    h, code = layer(torch.randn(3, 4))
    code.sum().backward()
    assert layer.proj.weight.grad is not None and layer.proj.weight.grad.abs().sum() > 0


def test_codes_are_nested_prefixes() -> None:
    torch.manual_seed(0)
    model = CrossModalHasher(vocab_size=10, hash_dim=128, width=8).eval()
    h, code = model.encode_image(torch.randn(4, 3, 16, 16))
    assert set(code.unique().tolist()) <= {-1.0, 1.0}
    for short, long in ((8, 16), (16, 32), (32, 64), (64, 128)):
        assert torch.equal(code[:, :long][:, :short], code[:, :short])
        assert torch.equal(torch.sign(h[:, :short]).clamp(min=0), code[:, :short].clamp(min=0))


def test_map_and_precision_by_hand() -> None:
    q, db = np.array([0]), np.array([0, 1, 0, 1])
    dist = np.array([[0.0, 1.0, 2.0, 3.0]])  # ranking 0,1,2,3 -> relevant at ranks 1 and 3
    assert mean_average_precision(dist, q, db) == pytest.approx((1 / 1 + 2 / 3) / 2)
    assert precision_at_k(dist, q, db, 1) == 1.0
    assert precision_at_k(dist, q, db, 2) == 0.5
    # ties go to the lower index: ranking 2,0,1,3 -> relevant at ranks 1, 2
    tied = np.array([[1.0, 1.0, 0.0, 2.0]])
    assert mean_average_precision(tied, q, db) == 1.0
    # two queries; the second has no relevant item and is left out of the mean
    two = np.array([[3.0, 2.0, 1.0, 0.0], [0.0, 1.0, 2.0, 3.0]])
    s = retrieval_scores(two, np.array([0, 7]), db, ks=(1, 4))
    # query 0: ranking 3,2,1,0 -> relevant at ranks 2 and 4: AP = (1/2 + 2/4) / 2
    assert s["map"] == pytest.approx(0.5)
    assert s["p@1"] == 0.0 and s["p@4"] == pytest.approx((2 / 4 + 0) / 2)


def test_hamming_distance_exact() -> None:
    a = np.array([[1, 1, -1, -1], [1, -1, 1, -1]])
    b = np.array([[1, 1, -1, -1], [-1, -1, 1, 1], [1, 1, 1, 1]])
    assert hamming_distance(a, b).tolist() == [[0, 4, 2], [2, 2, 2]]


def _png(path: Path, colour=(200, 10, 10)) -> None:
    Image.new("RGB", (20, 20), colour).save(path)


def make_folder(root: Path) -> Path:
    images = root / "images"
    images.mkdir(parents=True)
    spec = {"images": [], "annotations": []}
    for i in range(6):
        _png(images / f"ok{i}.png", (40 * i, 100, 200 - 30 * i))
        spec["images"].append({"id": i, "file_name": f"ok{i}.png"})
        spec["annotations"].append({"image_id": i, "caption": f"colour number {i}"})
        spec["annotations"].append({"image_id": i, "caption": f"색 {i}번"})
    (images / "broken.png").write_bytes(b"not a png at all")
    spec["images"] += [{"id": 10, "file_name": "missing.png"},
                       {"id": 11, "file_name": "broken.png"},
                       {"id": 12, "file_name": "ok0.png"}]
    spec["annotations"] += [{"image_id": 10, "caption": "gone"},
                            {"image_id": 11, "caption": "bad bytes"},
                            {"image_id": 12, "caption": "   "}]
    (root / "captions.json").write_text(json.dumps(spec), "utf-8")
    return images


def test_folder_loader_reports_bad_items_by_name(tmp_path: Path) -> None:
    images = make_folder(tmp_path)
    lines: list[str] = []
    ds = load_folder(images, tmp_path / "captions.json", seed=0, image_size=16, info=lines.append)
    text = "\n".join(ds.skipped)
    assert "missing.png" in text and "broken.png" in text and "ok0.png" in text
    assert any("missing.png" in ln for ln in lines) and any("broken.png" in ln for ln in lines)
    usable = ds.train + ds.val.query + ds.test.query
    assert len({it.item_id for it in usable}) == 6
    assert all(len(it.captions) == 2 for it in usable)


@pytest.mark.parametrize("bits", [8, 16, 64, 128])
def test_pack_unpack_roundtrip(bits: int) -> None:
    from adapters.vlm_quantization import kernels

    rng = np.random.default_rng(bits)
    signs = np.where(rng.random((7, bits)) > 0.5, 1, -1).astype(np.int8)
    assert np.array_equal(kernels.unpack(kernels.pack(signs), bits), signs)
    # packed Hamming top-k agrees with the exact distance on sign matrices
    idx, dist = kernels.hamming_topk(kernels.pack(signs), kernels.pack(signs[:1])[0], 7)
    assert list(dist) == sorted(hamming_distance(signs[:1], signs)[0].tolist())
