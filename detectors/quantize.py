"""INT8 OpenVINO export of the built-in detection model, made at `xueliang models fetch --int8`.

Post-training quantisation with NNCF (`nncf.quantize`, preset MIXED) of the FP32 OpenVINO export,
calibrated on frames of the bundled clips (`configs/media/*.mp4`, sampled evenly, letterboxed as
the detector letterboxes). As Ultralytics does for its own INT8 exports, the detection head's box
decoding (the last Sigmoid and everything of the head's DFL / box maths) stays in floating point:
quantising it costs accuracy for next to no speed. The result keeps the FP32 export's dynamic
height and width (region inference), and its metadata (class names). A config selects it with
`model.precision: int8`.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import structlog

log = structlog.get_logger(__name__)

BUNDLED_CLIPS = Path(__file__).resolve().parents[1] / "configs" / "media"


def calibration_frames(clips: list[Path], imgsz: int, count: int = 120) -> list[np.ndarray]:
    """`count` frames in all, evenly over `clips`, as (1, 3, imgsz, imgsz) float32 model inputs."""
    import av
    from ultralytics.data.augment import LetterBox

    box = LetterBox((imgsz, imgsz), auto=False)
    per = max(1, count // max(1, len(clips)))
    out = []
    for clip in clips:
        with av.open(str(clip)) as c:
            stream = c.streams.video[0]
            duration = float(stream.duration * stream.time_base) if stream.duration else 60.0
            step, due = duration / per, 0.0
            for f in c.decode(video=0):
                if f.time is not None and f.time >= due:
                    im = box(image=f.to_ndarray(format="bgr24"))[:, :, ::-1].transpose(2, 0, 1)
                    out.append(np.ascontiguousarray(im, dtype=np.float32)[None] / 255.0)
                    due += step
    if not out:
        raise ValueError(f"no calibration frames in {[str(c) for c in clips]}")
    return out


def quantize_int8(src: Path, out: Path, frames: list[np.ndarray]) -> Path:
    """The OpenVINO export folder `src` quantised to INT8 into the folder `out`."""
    import nncf
    import openvino as ov

    xml = next(src.glob("*.xml"), None)
    if xml is None:
        raise FileNotFoundError(f"{src} is not an OpenVINO export folder (no .xml inside)")
    model = ov.Core().read_model(str(xml))
    ops = model.get_ordered_ops()
    sigmoids = [op.get_friendly_name() for op in ops if op.get_type_name() == "Sigmoid"]
    ignored = None
    if sigmoids:
        head = sigmoids[-1].split("/", 1)[0]
        ignored = nncf.IgnoredScope(names=[op.get_friendly_name() for op in ops if op.get_type_name() == "Sigmoid"
                                           or op.get_friendly_name().startswith((f"{head}/", f"{head}.dfl"))])
    q = nncf.quantize(model, nncf.Dataset(frames), preset=nncf.QuantizationPreset.MIXED, subset_size=len(frames),
                      ignored_scope=ignored)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        staged = Path(tmp) / out.name
        staged.mkdir()
        ov.save_model(q, str(staged / xml.name), compress_to_fp16=False)
        for extra in src.glob("*.yaml"):
            shutil.copy(extra, staged / extra.name)
        shutil.move(str(staged), out)
    log.info("model.quantized", src=str(src), out=str(out), calibration_frames=len(frames))
    return out
