"""`xueliang models import`: a city's own YOLO detector into the registry, checked and exported.

Accepted: an Ultralytics checkpoint (`.pt`), an ONNX file or an OpenVINO export folder of any
YOLO detection family Ultralytics exports (v5u, v8, v9, v10, 11, 12), at any square input
size, with any number of classes. Class names come from the model's metadata (Ultralytics writes
them into the checkpoint, the ONNX metadata and the OpenVINO `metadata.yaml`) or from `classes`.

Everything is written into a temporary folder inside the registry, exported for the requested
engines (Ultralytics for a checkpoint, OpenVINO's converter for an ONNX file), run once on a
bundled frame, and only then renamed into place: a failed import leaves the registry as it was.
"""
from __future__ import annotations

import ast
import importlib.util
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import structlog
import yaml

from detectors.model_store import ultralytics_env
from detectors.registry import BUILTIN, NAME_PATTERN, ModelEntry, ModelSource, Registry, RegistryError, model_sha256, now_iso

log = structlog.get_logger(__name__)


class ImportRefused(ValueError):
    """The model cannot be imported; the message says why and what to do."""


@dataclass
class Inspected:
    kind: str  # pt | onnx | openvino
    task: str | None  # None: the model does not say
    names: list[str] | None
    imgsz: int | None
    end2end: bool


def class_names(raw) -> list[str] | None:
    """Class names from metadata: a dict {id: name} (maybe as text) or a list, ids 0..n-1."""
    if isinstance(raw, str):
        raw = ast.literal_eval(raw)
    if not raw:
        return None
    if isinstance(raw, (list, tuple)):
        return [str(n) for n in raw]
    ids = sorted(int(k) for k in raw)
    if ids != list(range(len(ids))):
        raise ImportRefused(f"class ids in the model's metadata are not 0..{len(ids) - 1}: {ids[:10]}")
    return [str(raw[k] if k in raw else raw[str(k)]) for k in ids]


def _size(raw) -> int | None:
    if isinstance(raw, str):
        raw = ast.literal_eval(raw)
    if isinstance(raw, (list, tuple)):
        if len(set(raw)) != 1:
            raise ImportRefused(f"input size {list(raw)} is not square; export the model at a square size")
        raw = raw[0]
    return int(raw) if raw else None


def _why(exc: BaseException) -> str:
    """An engine's error in one line: its type and the start of its message."""
    lines = str(exc).splitlines()
    return f"{type(exc).__name__}: {lines[0][:240] if lines else ''}"


def _truthy(raw) -> bool:
    return str(raw).lower() == "true" if isinstance(raw, str) else bool(raw)


def inspect(path: Path) -> Inspected:
    """What kind of model `path` is, as far as its file and metadata tell; ImportRefused if none."""
    if path.is_dir():
        if not list(path.glob("*.xml")):
            raise ImportRefused(f"{path}: a folder but not an OpenVINO export (no .xml inside)")
        meta_file = path / "metadata.yaml"
        meta = yaml.safe_load(meta_file.read_text(encoding="utf-8")) if meta_file.is_file() else {}
        return Inspected("openvino", meta.get("task"), class_names(meta.get("names")), _size(meta.get("imgsz")),
                         _truthy(meta.get("end2end", False)))
    if not path.is_file():
        raise ImportRefused(f"{path}: no such file or folder")
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        import onnxruntime as ort

        try:
            session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types for a bad file
            raise ImportRefused(f"{path}: not an ONNX model ({_why(exc)})") from None
        meta = session.get_modelmeta().custom_metadata_map
        shape = session.get_inputs()[0].shape
        static = shape[2] if len(shape) == 4 and isinstance(shape[2], int) and shape[2] == shape[3] else None
        return Inspected("onnx", meta.get("task"), class_names(meta.get("names")), static or _size(meta.get("imgsz")),
                         _truthy(meta.get("end2end", False)))
    if suffix == ".pt":
        import torch
        from ultralytics.nn.tasks import load_checkpoint

        try:
            model, ckpt = load_checkpoint(str(path))
        except (torch.serialization.pickle.UnpicklingError, RuntimeError, TypeError, ModuleNotFoundError,
                EOFError, AttributeError, KeyError, ValueError) as exc:
            raise ImportRefused(f"{path}: not an Ultralytics checkpoint ({_why(exc)})") from None
        from ultralytics.nn.tasks import guess_model_task

        train = ckpt.get("train_args") or {}
        # The head decides (a checkpoint without train_args gets Ultralytics' default task, `detect`).
        task = guess_model_task(model.yaml) if isinstance(getattr(model, "yaml", None), dict) else None
        return Inspected("pt", task or getattr(model, "task", None), class_names(getattr(model, "names", None)),
                         _size(train.get("imgsz")) or 640, bool(getattr(model, "end2end", False)))
    raise ImportRefused(f"{path}: not a model: give an Ultralytics checkpoint (.pt), an ONNX file (.onnx) "
                        "or an OpenVINO export folder (*_openvino_model)")


def read_class_file(path: Path) -> list[str]:
    """Class names in class-id order: one a line, or YAML (a list, {id: name}, or a dataset file's `names`)."""
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".yaml", ".yml"):
        doc = yaml.safe_load(text)
        doc = doc.get("names", doc) if isinstance(doc, dict) and "names" in doc else doc
        names = class_names(doc) if isinstance(doc, (list, dict)) else None
        if not names:
            raise ImportRefused(f"{path}: no class names (a list, a mapping id -> name, or `names:`)")
        return names
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def given_classes(classes: str | None, classes_file: Path | None) -> list[str] | None:
    """The class names an import was given: comma-separated, or a class file (not both); None: the model's."""
    if classes and classes_file:
        raise ImportRefused("give --classes or --classes-file, not both")
    if classes_file:
        return read_class_file(classes_file)
    return [c.strip() for c in classes.split(",")] if classes else None


def import_report(entry: ModelEntry) -> list[str]:
    """What an import registered and how its check on the bundled frame went, for people."""
    shown = ", ".join(entry.classes[:12]) + (", ..." if len(entry.classes) > 12 else "")
    checks = {b: v for b, v in entry.validation.items() if isinstance(v, dict)}
    return [f"imported {entry.name}: {entry.source.kind}, {len(entry.classes)} classes ({shown}), imgsz {entry.imgsz}, "
            f"exported for {', '.join(sorted(entry.exports))}, sha256 {entry.sha256[:12]}",
            f"checked on {entry.validation.get('frame')}: " +
            ", ".join(f"{b} {v['detections']} detection(s) in {v['seconds']} s" for b, v in checks.items())]


def bundled_frame() -> Path:
    """The frame every import is checked on: Ultralytics' own street scene (bus.jpg), installed with it."""
    spec = importlib.util.find_spec("ultralytics")
    assert spec and spec.submodule_search_locations
    return Path(spec.submodule_search_locations[0]) / "assets" / "bus.jpg"


def import_model(source: Path, name: str, data_dir: Path, backends: list[str], classes: list[str] | None = None,
                 imgsz: int | None = None, replace: bool = False) -> ModelEntry:
    """Import `source` as `name`: inspect, export for `backends`, check, register. All or nothing."""
    import re

    if not re.match(NAME_PATTERN, name):
        raise ImportRefused(f"--name {name!r}: use lower-case letters, digits, '-' and '_' (at most 64)")
    if name == BUILTIN:
        raise ImportRefused(f"--name {name}: the built-in model's name (`xueliang models fetch`); choose another")
    registry = Registry(data_dir)
    if (registry.folder(name) / "manifest.json").exists() and not replace:
        raise RegistryError(f"a model named {name!r} is already registered; remove it first or import with --replace")
    source = Path(source).resolve()
    ultralytics_env(data_dir)
    info = inspect(source)
    if info.task not in (None, "detect"):
        raise ImportRefused(f"{source}: a {info.task} model; only detection models (task `detect`) can be imported")
    names = _class_list(source, info, classes)
    if info.kind != "pt" and imgsz is not None and info.imgsz is not None and imgsz != info.imgsz:
        raise ImportRefused(f"--imgsz {imgsz}: {source} was exported at {info.imgsz}; only a checkpoint "
                            "(.pt) can be exported at another size")
    size = imgsz or info.imgsz
    if size is None:
        raise ImportRefused(f"{source}: the input size is dynamic and not in the metadata; pass --imgsz")
    if size % 32 or not 160 <= size <= 1920:
        raise ImportRefused(f"input size {size}: must be a multiple of 32 between 160 and 1920")
    registry.root.mkdir(parents=True, exist_ok=True)
    staged = Path(tempfile.mkdtemp(prefix=f".import-{name}-", dir=registry.root))
    try:
        exports = _stage(source, info, staged, backends, size, names, name)
        entry = ModelEntry(
            name=name, sha256=model_sha256(source), classes=names, imgsz=size, end2end=info.end2end,
            source=ModelSource(kind=info.kind, file=source.name, path=str(source)), imported_at=now_iso(),
            exports={b: f"registry/{name}/{rel}" for b, rel in exports.items()},
        )
        report, end2end = _validate(entry, staged, exports, data_dir)
        entry = entry.model_copy(update={"validation": report, "end2end": end2end})
        registry.commit(staged, entry, replace=replace)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    log.info("model.imported", model=name, kind=info.kind, classes=len(names), imgsz=size, backends=sorted(exports))
    return entry


def _class_list(source: Path, info: Inspected, classes: list[str] | None) -> list[str]:
    if classes:
        if len(set(classes)) != len(classes):
            raise ImportRefused(f"--classes: names repeat: {sorted({c for c in classes if classes.count(c) > 1})}")
        if info.names is not None and len(classes) != len(info.names):
            raise ImportRefused(f"--classes: {len(classes)} names given but {source.name} has {len(info.names)} classes")
        return list(classes)
    if info.names is None:
        raise ImportRefused(f"{source}: the class list is missing: the model carries no class names; pass "
                            "--classes a,b,c or --classes-file FILE (one name a line, in class-id order)")
    return info.names


def _stage(source: Path, info: Inspected, staged: Path, backends: list[str], imgsz: int,
           names: list[str], name: str) -> dict[str, str]:
    """Copy the source into `staged` and export it for each backend; backend -> path inside `staged`."""
    out: dict[str, str] = {}
    if info.kind == "pt":
        shutil.copy2(source, staged / "model.pt")
        for backend in backends:
            if backend == "torch":
                out["torch"] = "model.pt"
                continue
            from ultralytics import YOLO

            log.info("model.export", model=name, backend=backend, imgsz=imgsz)
            try:
                produced = Path(YOLO(str(staged / "model.pt")).export(format=backend, imgsz=imgsz, half=False,
                                                                      dynamic=False, verbose=False))
            except Exception as exc:  # whatever Ultralytics or the exporter raises
                raise ImportRefused(f"{source.name}: Ultralytics could not export it for {backend} "
                                    f"({_why(exc)})") from None
            target = staged / ("model.onnx" if backend == "onnx" else "model_openvino_model")
            if produced != target:
                shutil.move(str(produced), target)
            out[backend] = target.name
        for leftover in staged.glob("model.onnx") if "onnx" not in backends else ():
            leftover.unlink()  # the OpenVINO export goes through ONNX and leaves it behind
        return out
    if "torch" in backends:
        raise ImportRefused(f"--backend torch needs the checkpoint (.pt); {source.name} is an {info.kind} export")
    if info.kind == "openvino":
        if backends != ["openvino"]:
            raise ImportRefused(f"--backend {' '.join(backends)}: an OpenVINO export runs on openvino only")
        shutil.copytree(source, staged / "model_openvino_model")
        _write_metadata(staged / "model_openvino_model", names, imgsz, info.end2end)
        return {"openvino": "model_openvino_model"}
    shutil.copy2(source, staged / "model.onnx")
    if "onnx" in backends:
        out["onnx"] = "model.onnx"
    if "openvino" in backends:
        import openvino as ov

        folder = staged / "model_openvino_model"
        folder.mkdir()
        try:
            ov.save_model(ov.convert_model(str(source)), str(folder / "model.xml"), compress_to_fp16=False)
        except Exception as exc:  # the converter's own error types
            raise ImportRefused(f"{source}: OpenVINO cannot convert it ({_why(exc)})") from None
        _write_metadata(folder, names, imgsz, info.end2end)
        out["openvino"] = folder.name
    if "onnx" not in backends:
        (staged / "model.onnx").unlink()
    return out


def _write_metadata(folder: Path, names: list[str], imgsz: int, end2end: bool) -> None:
    """The registry's class names beside the OpenVINO model, as Ultralytics writes them."""
    meta_file = folder / "metadata.yaml"
    meta = yaml.safe_load(meta_file.read_text(encoding="utf-8")) if meta_file.is_file() else {}
    meta.update(task="detect", names=dict(enumerate(names)), imgsz=[imgsz, imgsz], end2end=end2end)
    meta_file.write_text(yaml.safe_dump(meta, allow_unicode=True, sort_keys=False), encoding="utf-8")


def _validate(entry: ModelEntry, staged: Path, exports: dict[str, str], data_dir: Path) -> tuple[dict, bool]:
    """Run each export once on the bundled frame: it loads, takes the input size, and its output
    has the shape of a detector with these classes. Returns a report and whether the output is
    NMS-free (final boxes, (1, N, 6)): an export decides that, not the checkpoint."""
    import cv2
    import numpy as np

    from detectors.yolo import ModelSpec, YoloDetector

    frame = bundled_frame()
    image = cv2.imread(str(frame))
    nc, report, end2end = len(entry.classes), {"frame": frame.name}, False
    for backend, rel in exports.items():
        spec = ModelSpec(entry.name, staged / rel, backend, entry.imgsz, entry.sha256, dict(enumerate(entry.classes)))
        cfg = _Settings(backend=backend)
        try:
            det = YoloDetector(cfg, data_dir, spec=spec)
            t0 = time.perf_counter()
            raw = det.forward(image)
            seconds = time.perf_counter() - t0
        except Exception as exc:  # whatever the engine raises on a model it cannot run
            raise ImportRefused(f"{entry.source.file}: the {backend} export does not run on {frame.name} "
                                f"({_why(exc)})") from None
        shape = tuple(np.asarray(raw).shape)
        final = len(shape) == 3 and shape[-1] == 6
        end2end |= final
        if len(shape) != 3 or not (final or shape[1] == 4 + nc):
            raise ImportRefused(
                f"{entry.source.file}: output shape {shape} is not a detector's with {nc} classes (expected "
                f"(1, {4 + nc}, anchors), or (1, N, 6) for an NMS-free head): not a detection model, or a class "
                "list of the wrong length")
        found = det.detect(image)
        report[backend] = {"detections": len(found), "seconds": round(seconds, 3), "output": list(shape)}
    return report, end2end


@dataclass
class _Settings:
    """The detector settings an import check runs with."""

    backend: str
    min_score: float = 0.25
    iou: float = 0.7
    threads: int | None = None
