"""backbone=siglip: a tiny randomly initialised SigLIP saved locally (no hub), end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

transformers = pytest.importorskip("transformers")

import torch  # noqa: E402

from adapters.base import ConfigError  # noqa: E402
from adapters.conformance import RecordingReporter  # noqa: E402
from adapters.vlm_quantization import VLMQuantizationAdapter  # noqa: E402

TINY = {"dataset": "synthetic", "n_train": 32, "n_query": 4, "n_database": 16, "image_size": 16, "epochs": 1,
        "batch_size": 16, "hash_dim": 64, "log_every": 1, "num_threads": 1,
        "backbone": "siglip"}


def _save_tiny_siglip(path: Path, vocab: int = 160) -> Path:
    torch.manual_seed(0)
    text = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                vocab_size=vocab, max_position_embeddings=32, pad_token_id=0, bos_token_id=1,
                eos_token_id=2)
    vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                  num_attention_heads=2, image_size=32, patch_size=8)
    model = transformers.SiglipModel(transformers.SiglipConfig(text_config=text,
                                                               vision_config=vision))
    model.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def siglip_dir(tmp_path_factory) -> Path:
    return _save_tiny_siglip(tmp_path_factory.mktemp("siglip") / "tiny")


def test_siglip_train_eval_index_search(siglip_dir: Path, tmp_path: Path) -> None:
    adapter = VLMQuantizationAdapter()
    cfg = adapter.validate_config({**TINY, "backbone_path": str(siglip_dir)})
    assert cfg["freeze_backbone"] is True
    rep = RecordingReporter(tmp_path / "run")
    result = adapter.train(cfg, rep)
    assert result["epochs_done"] == 1
    assert {"train/loss", "val/map_64", "val/map_8"} <= rep.keys()
    # no tokenizer in the directory: the char fallback is used and said so
    assert any("falling back to the character tokenizer" in line for line in rep.lines)
    assert any("frozen" in line for line in rep.lines)

    ckpt = rep.checkpoint_path("best.pt")
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    assert state["config"]["backbone_path"] == str(siglip_dir)
    # frozen towers are rebuilt from backbone_path, not stored: only the hash heads are
    assert state["model"] and all(k.split(".")[0] in ("image_hash", "text_hash")
                                  for k in state["model"])

    res = adapter.evaluate(cfg, ckpt, rep)
    assert res.view_type == "retrieval_table"
    assert 0.0 <= res.summary["map_i2t_64"] <= 1.0

    idx_dir = tmp_path / "index"
    adapter.build_index(cfg, ckpt, idx_dir, rep)
    index = adapter.load_index(idx_dir)
    hits = adapter.search_by_text(index, "a red circle", k=5, bits=64, method="hamming")
    assert [h.rank for h in hits] == [1, 2, 3, 4, 5]
    hits = adapter.search_by_image(index, Path(hits[0].image_path), k=3, bits=32,
                                   method="cosine")
    assert len(hits) == 3 and all(h.text for h in hits)


def test_siglip_uses_the_directory_tokenizer(tmp_path: Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    path = _save_tiny_siglip(tmp_path / "with-tokenizer")
    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(["a red circle", "a small blue square on the left", "빨간 원"],
                            trainers.WordLevelTrainer(special_tokens=["<pad>", "<unk>", "</s>"]))
    transformers.PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>",
                                         unk_token="<unk>", eos_token="</s>").save_pretrained(path)
    adapter = VLMQuantizationAdapter()
    cfg = adapter.validate_config({**TINY, "backbone_path": str(path)})
    rep = RecordingReporter(tmp_path / "run")
    adapter.train(cfg, rep)
    assert any("using the tokenizer in" in line for line in rep.lines)
    ckpt = rep.checkpoint_path("last.pt")
    assert torch.load(ckpt, weights_only=True)["vocab"] == []  # reloaded from backbone_path
    adapter.build_index(cfg, ckpt, tmp_path / "index", rep)
    index = adapter.load_index(tmp_path / "index")
    assert len(adapter.search_by_text(index, "빨간 원", k=3, bits=16, method="cosine")) == 3


def test_siglip_unfrozen_stores_towers_and_resumes(siglip_dir: Path, tmp_path: Path) -> None:
    adapter = VLMQuantizationAdapter()
    cfg = adapter.validate_config({**TINY, "backbone_path": str(siglip_dir),
                                   "freeze_backbone": False, "epochs": 2})
    rep = RecordingReporter(tmp_path / "run", stop_after_logs=1)
    assert adapter.train(cfg, rep)["stopped"]
    last = rep.checkpoint_path("last.pt")
    state = torch.load(last, map_location="cpu", weights_only=True)
    assert any(k.startswith("backbone.") for k in state["model"])
    rep2 = RecordingReporter(tmp_path / "run")
    assert adapter.train(cfg, rep2, resume_from=last)["epochs_done"] == 2
    res = adapter.evaluate(cfg, rep2.checkpoint_path("last.pt"), rep2)
    assert 0.0 <= res.summary["map_t2i_8"] <= 1.0


def test_siglip_config_errors_name_backbone_path(tmp_path: Path) -> None:
    adapter = VLMQuantizationAdapter()
    with pytest.raises(ConfigError) as exc:
        adapter.validate_config({"backbone": "siglip"})
    assert "backbone_path" in exc.value.errors and "backbone_path" in str(exc.value)

    missing = tmp_path / "no-such-model"
    with pytest.raises(ConfigError) as exc:
        adapter.validate_config({"backbone": "siglip", "backbone_path": str(missing)})
    assert str(missing) in exc.value.errors["backbone_path"]

    not_a_model = tmp_path / "images"  # a directory without config.json
    not_a_model.mkdir()
    with pytest.raises(ConfigError) as exc:
        adapter.validate_config({"backbone": "siglip", "backbone_path": str(not_a_model)})
    assert "config.json" in exc.value.errors["backbone_path"]

    other = tmp_path / "bert"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ConfigError) as exc:
        adapter.validate_config({"backbone": "siglip", "backbone_path": str(other)})
    assert "'bert'" in exc.value.errors["backbone_path"]

    # collected together with the other fields' errors
    with pytest.raises(ConfigError) as exc:
        adapter.validate_config({"backbone": "siglip", "lr": -1.0})
    assert {"lr", "backbone_path"} <= set(exc.value.errors)

    # the default backbone ignores backbone_path; the defaults are unchanged
    cfg = adapter.validate_config({})
    assert (cfg["backbone"], cfg["backbone_path"], cfg["freeze_backbone"]) == (
        "scratch", "", True)


def test_siglip_unloadable_weights_error_names_path(tmp_path: Path) -> None:
    from adapters.vlm_quantization.siglip import load_backbone

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text(json.dumps({"model_type": "siglip"}))  # no weights
    with pytest.raises(ValueError, match="backbone_path") as exc:
        load_backbone(str(broken))
    assert str(broken) in str(exc.value)
