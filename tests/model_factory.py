"""Real models other than the built-in one, made from the bundled yolov8n checkpoint for the
registry tests: exported by Ultralytics at another size, cut down to fewer renamed classes,
stripped of its metadata; and a segmentation model, which the registry must refuse."""
from __future__ import annotations

import shutil
from pathlib import Path

from detectors.model_store import ultralytics_env
from tests.helpers import DATA_DIR

CHECKPOINT = DATA_DIR / "models" / "yolov8n.pt"


def export_onnx(work: Path, imgsz: int) -> Path:
    """yolov8n exported to ONNX by Ultralytics at `imgsz` (its metadata: names, imgsz, task)."""
    ultralytics_env(DATA_DIR)
    from ultralytics import YOLO

    staged = work / "yolov8n.pt"
    shutil.copy(CHECKPOINT, staged)
    return Path(YOLO(str(staged)).export(format="onnx", imgsz=imgsz, half=False, dynamic=False, verbose=False))


def reduced_checkpoint(dest: Path, keep: list[int], names: list[str], train_imgsz: int = 416) -> Path:
    """yolov8n with only the classes `keep` (their own output channels of the detection head, so
    their scores are unchanged), renamed to `names`: a real 3-class checkpoint, as a city's own
    fine-tuned model would be."""
    import torch
    from ultralytics.nn.tasks import load_checkpoint

    ultralytics_env(DATA_DIR)
    model, _ = load_checkpoint(str(CHECKPOINT))
    head = model.model[-1]
    idx = torch.tensor(keep)
    for branch in head.cv3:
        conv = branch[-1]
        cut = torch.nn.Conv2d(conv.in_channels, len(keep), 1)
        cut.weight.data = conv.weight.data[idx].clone()
        cut.bias.data = conv.bias.data[idx].clone()
        branch[-1] = cut
    head.nc = len(keep)
    head.no = head.nc + head.reg_max * 4
    model.nc = len(keep)
    model.yaml["nc"] = len(keep)
    model.names = dict(enumerate(names))
    torch.save({"model": model, "train_args": {"imgsz": train_imgsz, "task": "detect"}}, dest)
    return dest


def segmentation_checkpoint(dest: Path) -> Path:
    """An (untrained) YOLOv8n segmentation checkpoint: the kind of file the registry refuses."""
    import torch
    from ultralytics.nn.tasks import SegmentationModel

    ultralytics_env(DATA_DIR)
    model = SegmentationModel("yolov8n-seg.yaml", nc=2, verbose=False)
    model.names = {0: "bin", 1: "bag"}
    torch.save({"model": model, "train_args": {"imgsz": 320, "task": "segment"}}, dest)
    return dest


def without_metadata(src: Path, dest: Path) -> Path:
    """The ONNX model with its metadata (class names, task, size) removed, as some vendors ship them."""
    import onnx

    proto = onnx.load(str(src))
    del proto.metadata_props[:]
    onnx.save(proto, str(dest))
    return dest


def short_clip(src: Path, dest: Path, seconds: float) -> Path:
    """The first `seconds` of a clip, remuxed without re-encoding (keeps the replay tests short)."""
    import av

    with av.open(str(src)) as inp, av.open(str(dest), "w") as out:
        vin = inp.streams.video[0]
        vout = out.add_stream_from_template(vin)
        for packet in inp.demux(vin):
            if packet.dts is None:
                continue
            if packet.pts is not None and packet.pts * vin.time_base > seconds:
                break
            packet.stream = vout
            out.mux(packet)
    return dest
