"""The model registry: every detection model the service may run, as data in the data directory.

    <data_dir>/models/registry/<name>/manifest.json   what the model is (see `ModelEntry`)
    <data_dir>/models/registry/<name>/...             its source file and its exports

A model gets there by `xueliang models import` (detectors/model_import.py), which writes the
whole folder under a temporary name and renames it into place: a folder with a manifest is
complete. The built-in `yolov8n` is known without a manifest (its weights come from
`xueliang models fetch`, its exports live where they always did), so data directories and
configs from before the registry keep working; `models fetch` writes its manifest too.
"""
from __future__ import annotations

import json
import re
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from detectors import model_store
from detectors.model_store import ModelMissing

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
BUILTIN = "yolov8n"
Backend = Literal["openvino", "onnx", "torch"]
SourceKind = Literal["pt", "onnx", "openvino", "builtin"]


class ModelSource(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: SourceKind = Field(description="What was imported: an Ultralytics checkpoint, an ONNX file, an OpenVINO folder.")
    file: str = Field(description="The imported file's or folder's name (or the package it came from).")
    path: str | None = Field(None, description="Where it was imported from.")


class ModelEntry(BaseModel):
    """One registered model: the manifest."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(pattern=NAME_PATTERN, description="Registry name; configs name the model by it.")
    sha256: str = Field(description="sha256 of the imported model (for a folder: of its .xml then its .bin).")
    task: Literal["detect"] = Field("detect", description="Only detection models are accepted.")
    classes: list[str] = Field(min_length=1, description="Class names by class id.")
    imgsz: int = Field(description="Square input size the model runs at, pixels.")
    end2end: bool = Field(False, description="NMS-free head (YOLOv10, YOLO26): outputs final boxes.")
    source: ModelSource
    imported_at: str = Field(description="When it was imported (ISO 8601, UTC).")
    exports: dict[str, str] = Field(
        default_factory=dict, description="Backend -> exported model, relative to <data_dir>/models.")
    validation: dict = Field(default_factory=dict, description="The check run at import: frame, detections, seconds.")
    builtin: bool = Field(False, description="The built-in model, fetched by `xueliang models fetch`.")

    def class_id(self, name: str) -> int | None:
        return self.classes.index(name) if name in self.classes else None

    def export_path(self, backend: str, imgsz: int | None, data_dir: Path, precision: str = "fp32") -> Path:
        """The file or folder `backend` runs; raises ModelMissing naming the command that makes it."""
        if self.builtin:
            size = imgsz or self.imgsz
            try:
                path = model_store.export_path(self.name, backend, size, data_dir, precision)
            except ValueError as exc:
                raise ModelMissing(f"model {self.name}: {exc}") from None
            if not path.exists():
                flag = " --int8" if precision == "int8" else ""
                raise ModelMissing(
                    f"model {self.name} for backend {backend} at imgsz {size} ({precision}) is not in "
                    f"{data_dir / 'models'}; run `xueliang models fetch --backend {backend} --imgsz {size}{flag}` "
                    "(or `make models`) first")
            return path
        if precision != "fp32":
            raise ModelMissing(f"model {self.name}: INT8 is made for the built-in model only (`xueliang models fetch --int8`)")
        if imgsz is not None and imgsz != self.imgsz:
            raise ModelMissing(f"model {self.name} runs at imgsz {self.imgsz}, not {imgsz}; "
                               "leave `imgsz` unset or import the checkpoint again with `--imgsz`")
        rel = self.exports.get(backend)
        if rel is None:
            raise ModelMissing(f"model {self.name} has no {backend} export (it has {sorted(self.exports)}); import it "
                               f"again with `xueliang models import ... --name {self.name} --backend {backend}`")
        path = data_dir / "models" / rel
        if not path.exists():
            raise ModelMissing(f"model {self.name}: its {backend} export {path} is missing; import it again")
        return path


class RegistryError(ValueError):
    pass


def builtin_entry() -> ModelEntry:
    """The built-in COCO model, described without touching the data directory."""
    from detectors.yolo import coco_names

    src = model_store.WEIGHTS[BUILTIN]
    names = coco_names()
    return ModelEntry(name=BUILTIN, sha256=src.sha256, classes=[names[i] for i in range(len(names))], imgsz=640,
                      source=ModelSource(kind="builtin", file=f"{src.package}=={src.version}:{src.member}"),
                      imported_at="", builtin=True,
                      exports={b: str(model_store.export_path(BUILTIN, b, 640, Path("")).relative_to("models"))
                               for b in ("openvino", "onnx", "torch")})


class Registry:
    """The registered models of one data directory."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.root = self.data_dir / "models" / "registry"

    def folder(self, name: str) -> Path:
        return self.root / name

    def _read(self, name: str) -> ModelEntry | None:
        path = self.folder(name) / "manifest.json"
        if not path.is_file():
            return None
        try:
            return ModelEntry.model_validate_json(path.read_text(encoding="utf-8"))
        except ValidationError as exc:
            raise RegistryError(f"{path}: not a valid model manifest: {exc.errors()[0]['msg']}") from None

    def get(self, name: str) -> ModelEntry:
        """The model registered as `name`; raises KeyError with what is registered."""
        entry = self._read(name) if re.match(NAME_PATTERN, name) else None
        if name == BUILTIN:
            # Its exports are whatever `models fetch` has made (at 640: other sizes sit beside them).
            entry = entry or builtin_entry()
            made = {b: rel for b, rel in builtin_entry().exports.items() if (self.data_dir / "models" / rel).exists()}
            return entry.model_copy(update={"exports": made})
        if entry is None:
            raise KeyError(f"no model {name!r} in the registry {self.root}; registered: {self.names()}; "
                           "add one with `xueliang models import PATH --name NAME`")
        return entry

    def names(self) -> list[str]:
        # Folders of imports in progress (or cut short) start with a dot and are not models.
        found = {p.parent.name for p in self.root.glob("*/manifest.json")
                 if re.match(NAME_PATTERN, p.parent.name)} if self.root.is_dir() else set()
        return sorted(found | {BUILTIN})

    def entries(self) -> list[ModelEntry]:
        return [self.get(n) for n in self.names()]

    def remove(self, name: str) -> None:
        folder = self.folder(name)
        if not (folder / "manifest.json").is_file():
            raise KeyError(f"no model {name!r} in the registry {self.root}; registered: {self.names()}")
        with model_store.one_at_a_time(self.data_dir):
            trash = folder.with_name(f".removing-{name}")
            folder.rename(trash)  # gone from the registry at once, even if the delete below is cut short
            shutil.rmtree(trash)

    def commit(self, staged: Path, entry: ModelEntry, replace: bool = False) -> Path:
        """Move a staged folder (same filesystem, manifest not yet written) into place, atomically."""
        (staged / "manifest.json").write_text(entry.model_dump_json(indent=2) + "\n", encoding="utf-8")
        dest = self.folder(entry.name)
        with model_store.one_at_a_time(self.data_dir):
            if dest.exists():
                if not replace:
                    raise RegistryError(f"a model named {entry.name!r} is already registered; "
                                        "remove it first or import with --replace")
                old = dest.with_name(f".replaced-{entry.name}")
                dest.rename(old)
                staged.rename(dest)
                shutil.rmtree(old)
            else:
                staged.rename(dest)
        return dest

    def register_builtin(self) -> ModelEntry:
        """Write the built-in model's manifest (by `models fetch`): `models list` then shows when."""
        entry = builtin_entry().model_copy(update={"imported_at": now_iso()})
        folder = self.folder(BUILTIN)
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / "manifest.json.part"
        tmp.write_text(entry.model_dump_json(indent=2) + "\n", encoding="utf-8")
        tmp.rename(folder / "manifest.json")
        return entry


def entry_table(entries: list[ModelEntry]) -> list[str]:
    """The registered models as a table for people (`xueliang models list`), a header first."""
    rows = [f"{'name':<20} {'source':<8} {'classes':>7} {'imgsz':>5}  {'sha256':<12}  {'backends':<20} imported"]
    return rows + [f"{e.name:<20} {e.source.kind:<8} {len(e.classes):>7} {e.imgsz:>5}  {e.sha256[:12]:<12}  "
                   f"{','.join(sorted(e.exports)):<20} {e.imported_at or '-'}" for e in entries]


def now_iso() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def model_sha256(path: Path) -> str:
    """sha256 of a model file, or of an OpenVINO folder's .xml then .bin."""
    import hashlib

    if path.is_file():
        return model_store.sha256_of(path)
    h = hashlib.sha256()
    for part in sorted(path.glob("*.xml")) + sorted(path.glob("*.bin")):
        with part.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()
