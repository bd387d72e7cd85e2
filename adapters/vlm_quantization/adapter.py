"""``VLMQuantizationAdapter``: cross-modal image <-> text retrieval with nested binary codes.

This module is imported when the adapter is listed (TUI, CLI, registry), so it imports only
``adapters.base`` and the standard library; torch, numpy and Pillow load inside the methods.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from adapters.base import (
    EVALUATE,
    INDEX,
    RESUME,
    SEARCH_IMAGE,
    SEARCH_TEXT,
    TRAIN,
    BaseAdapter,
    ConfigError,
    ConfigSchema,
    EvalResult,
    Field,
    Reporter,
    SearchHit,
    SearchOption,
    SearchRange,
)

from .backbone import backbone_path_problem

BITS = (8, 16, 32, 64, 128)

SCHEMA = ConfigSchema((
    Field("dataset", "str", "openmoji", choices=("openmoji", "synthetic", "folder"),
          help="openmoji: ~1,900 real emoji (OpenMoji, CC BY-SA 4.0) with English/Korean "
               "Unicode names, relevant when they share a name word; synthetic: generated "
               "shapes; folder: your images plus a COCO-style captions JSON"),
    Field("openmoji_limit", "int", 0, min=0, max=10_000,
          help="dataset=openmoji: use only the first N emoji of the fixed split order "
               "(0: all; small values make quick tests)"),
    Field("data_dir", "str", "", help="images folder (dataset=folder)"),
    Field("captions_file", "str", "captions.json",
          help="COCO-style JSON {images:[{id,file_name}], annotations:[{image_id,caption}]}; "
               "relative paths are looked up in data_dir"),
    Field("n_train", "int", 6000, min=8, max=500_000,
          help="dataset=synthetic: generated training pairs"),
    Field("n_query", "int", 200, min=2, max=100_000,
          help="test queries (val uses half as many); openmoji: held-out query emoji"),
    Field("n_database", "int", 1000, min=8, max=500_000,
          help="dataset=synthetic: generated test database items (val uses half as many)"),
    Field("image_size", "int", 32, min=16, max=128, help="image side in pixels"),
    Field("hash_dim", "int", 128, choices=(64, 128),
          help="full code length; its 8/16/32/64(/128)-bit prefixes are the nested codes"),
    Field("width", "int", 32, min=8, max=256, help="CNN base channel width"),
    Field("lr", "float", 2e-3, min=0.0, min_exclusive=True, max=1.0,
          help="peak AdamW learning rate (warm-up then cosine decay)"),
    Field("weight_decay", "float", 1e-4, min=0.0, max=1.0, help="AdamW weight decay"),
    Field("temperature", "float", 0.1, min=0.0, min_exclusive=True, max=10.0,
          help="contrastive softmax temperature"),
    Field("quantization_weight", "float", 0.1, min=0.0, max=100.0,
          help="weight of the (|h|-1)^2 quantization loss"),
    Field("balance_weight", "float", 0.1, min=0.0, max=100.0,
          help="weight of the bit-balance loss (each bit ~50% on)"),
    Field("reg_warmup", "float", 0.5, min=0.0, max=1.0,
          help="fraction of training over which the quantization and balance weights ramp "
               "up from 0"),
    Field("augment", "float", 0.0, min=0.0, max=0.5,
          help="random zoom and shift of training images by up to this fraction (0: off)"),
    Field("epochs", "int", 40, min=1, max=10_000,
          help="training epochs (the OpenMoji default: about 4 minutes on 2 CPU cores)"),
    Field("batch_size", "int", 128, min=2, max=8192, help="pairs per step"),
    Field("subset_ratio", "float", 1.0, min=0.0, min_exclusive=True, max=1.0,
          help="fraction of the training set used (studies use < 1 for speed)"),
    Field("seed", "int", 0, min=0, max=2**31 - 1, help="data generation, init and shuffling"),
    Field("log_every", "int", 5, min=1, max=100_000, help="log train/* every N steps"),
    Field("num_threads", "int", 0, min=0, max=256,
          help="torch CPU threads (0 = torch's default)"),
    Field("backbone", "str", "scratch", choices=("scratch", "siglip"),
          help="scratch: the small CNN + character text encoder trained from scratch; siglip: "
               "a local SigLIP model's towers (needs the siglip extra and backbone_path)"),
    Field("backbone_path", "str", "",
          help="backbone=siglip: local directory of a SigLIP model saved with save_pretrained "
               "(never downloaded); its tokenizer is used when it has one"),
    Field("freeze_backbone", "bool", True,
          help="backbone=siglip: train only the hash heads (CPU-friendly; features computed "
               "once); false fine-tunes the towers too"),
    Field("timeout_s", "float", 0.0, min=0.0,
          help="stop training after this many seconds and fail the run (0: never); last.pt "
               "is kept to resume from"),
))


def _check_backbone(config: Mapping[str, Any] | None, errors: dict[str, str]) -> None:
    """Cross-field check: backbone=siglip needs a backbone_path holding a SigLIP model."""
    raw = {**SCHEMA.defaults(), **dict(config or {})}
    if raw.get("backbone") != "siglip" or "backbone_path" in errors:
        return
    problem = backbone_path_problem(raw.get("backbone_path"))
    if problem:
        errors["backbone_path"] = problem


class VLMQuantizationAdapter(BaseAdapter):
    name: ClassVar[str] = "vlm_quantization"
    description: ClassVar[str] = (
        "Image <-> text retrieval with nested binary hash codes (8-128 bits): small CNN and "
        "character-level text encoder trained with contrastive + quantization + balance loss.")
    capabilities: ClassVar[frozenset[str]] = frozenset(
        {TRAIN, EVALUATE, INDEX, SEARCH_TEXT, SEARCH_IMAGE, RESUME})
    result_view_type: ClassVar[str | None] = "retrieval_table"
    default_objective: ClassVar[tuple[str, str] | None] = ("val/map_64", "maximize")
    epochs_key: ClassVar[str | None] = "epochs"
    subset_key: ClassVar[str | None] = "subset_ratio"

    @classmethod
    def config_schema(cls) -> ConfigSchema:
        return SCHEMA

    @classmethod
    def validate_config(cls, config: Mapping[str, Any] | None) -> dict[str, Any]:
        errors: dict[str, str] = {}
        out: dict[str, Any] = {}
        try:
            out = SCHEMA.validate(config)
        except ConfigError as exc:
            errors.update(exc.errors)
        _check_backbone(config, errors)
        if errors:
            raise ConfigError(errors)
        return out

    @classmethod
    def get_search_ranges(cls) -> dict[str, SearchRange]:
        return {
            "lr": SearchRange("float", 3e-4, 1e-2, log=True),
            "temperature": SearchRange("float", 0.03, 0.5, log=True),
            "quantization_weight": SearchRange("float", 0.0, 1.0),
            "balance_weight": SearchRange("float", 0.0, 1.0),
            "hash_dim": SearchRange("categorical", choices=(64, 128)),
            "batch_size": SearchRange("categorical", choices=(64, 128, 256)),
            "augment": SearchRange("float", 0.0, 0.3),
        }

    @classmethod
    def sample_queries(cls) -> tuple[str, ...]:
        return ("a smiling cat", "고양이", "빨간 하트", "a rocket", "비 오는 구름")

    @classmethod
    def sample_images(cls, dest: Path) -> list[Path]:
        from .openmoji import write_samples

        return write_samples(Path(dest))

    def train(self, config: dict[str, Any], reporter: Reporter,
              resume_from: Path | None = None) -> dict[str, Any]:
        from .train import train

        return train(self.validate_config(config), reporter, resume_from)

    def evaluate(self, config: dict[str, Any], checkpoint: Path, reporter: Reporter) -> EvalResult:
        from .evaluation import evaluate

        return evaluate(self.validate_config(config), Path(checkpoint), reporter)

    def build_index(self, config: dict[str, Any], checkpoint: Path, index_dir: Path,
                    reporter: Reporter) -> dict[str, Any]:
        from .index import build_index

        return build_index(self.validate_config(config), Path(checkpoint), Path(index_dir),
                           reporter)

    def load_index(self, index_dir: Path) -> Any:
        from .index import load_index

        return load_index(Path(index_dir))

    def search_options(self) -> tuple[SearchOption, ...]:
        return (SearchOption("bits", BITS, 64, "bits"),
                SearchOption("method", ("hamming", "cosine"), "hamming", "method"))

    def search_by_text(self, index: Any, query: str, k: int = 10,
                       **options: Any) -> list[SearchHit]:
        from .index import search_by_text

        return search_by_text(index, query, k, **options)

    def search_by_image(self, index: Any, path: Path, k: int = 10,
                        **options: Any) -> list[SearchHit]:
        from .index import search_by_image

        return search_by_image(index, Path(path), k, **options)
