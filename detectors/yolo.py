"""YOLO detection on CPU or GPU through one of three engines, with Ultralytics doing the maths.

Ultralytics' `predict` imports torchvision, whose only Linux wheels on PyPI are CUDA builds that
break on a CPU-only torch. So the forward pass runs on the exported model (OpenVINO or ONNX
Runtime, faster on CPU anyway) or on the checkpoint's `nn.Module`, and pre- and post-processing
use Ultralytics' own LetterBox, non_max_suppression and scale_boxes.
"""
from __future__ import annotations

import ast
import importlib.util
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import structlog
import yaml

from detectors.detector_config import CustomModelConfig, ModelConfig
from detectors.detections import Detections
from detectors.model_store import ModelMissing, ultralytics_env
from detectors.registry import Registry, model_sha256

log = structlog.get_logger(__name__)


def coco_names() -> dict[int, str]:
    """COCO class names from Ultralytics' dataset file, read without importing torch."""
    spec = importlib.util.find_spec("ultralytics")
    assert spec and spec.submodule_search_locations
    path = Path(spec.submodule_search_locations[0]) / "cfg" / "datasets" / "coco.yaml"
    return {int(k): v for k, v in yaml.safe_load(path.read_text())["names"].items()}


@dataclass(frozen=True)
class ModelSpec:
    """What a detector runs: the exported model, its engine, size and classes, and its identity."""

    name: str
    path: Path
    backend: str
    imgsz: int
    sha256: str
    names: dict[int, str] | None = None  # None: read from the export's own metadata


def model_spec(cfg: ModelConfig | CustomModelConfig, data_dir: Path) -> ModelSpec:
    """Resolve a config's model: a registry name (main model, or an extra model's `model`), or an
    extra model's `path` (the older form)."""
    if isinstance(cfg, CustomModelConfig) and cfg.path is not None:
        if not cfg.path.exists():
            raise ModelMissing(f"custom model {cfg.name}: {cfg.path} does not exist")
        backend = cfg.backend or "onnx"
        return ModelSpec(cfg.name, cfg.path, backend, cfg.imgsz or _input_size(backend, cfg.path) or 640,
                         model_sha256(cfg.path))
    registered = cfg.model if isinstance(cfg, CustomModelConfig) else cfg.name
    try:
        entry = Registry(data_dir).get(registered)
    except KeyError as exc:
        raise ModelMissing(exc.args[0]) from None
    backend = cfg.backend or "openvino"  # an extra model's engine is decided by CustomModelConfig.engine
    path = entry.export_path(backend, cfg.imgsz, data_dir, getattr(cfg, "precision", "fp32"))
    return ModelSpec(entry.name, path, backend, cfg.imgsz or entry.imgsz, entry.sha256, dict(enumerate(entry.classes)))


class YoloDetector:
    """An Ultralytics-exported YOLO detection model. `cfg` needs backend, imgsz, min_score, iou."""

    def __init__(self, cfg: ModelConfig | CustomModelConfig, data_dir: Path, spec: ModelSpec | None = None) -> None:
        ultralytics_env(data_dir)
        import torch
        from ultralytics.data.augment import LetterBox

        self.spec = spec or model_spec(cfg, data_dir)
        self.path = self.spec.path
        self.imgsz = self.spec.imgsz
        self.min_score, self.iou = cfg.min_score, cfg.iou
        threads = getattr(cfg, "threads", None) or os.cpu_count() or 1
        # The name events carry: the registry name (an extra model's `name` in the older `path` form).
        self.model_name = self.spec.name
        self.sha256 = self.spec.sha256
        self._letterbox = LetterBox((self.imgsz, self.imgsz), auto=False)
        if self.spec.backend != "torch":
            # NMS is all torch does here: give it one thread so it does not fight the engine's pool.
            torch.set_num_threads(1)
        self._forward, names = _load_backend(self.spec.backend, self.path, threads, self.imgsz)
        self._threads = threads
        self._resizable: bool | None = None
        self._sized: dict[tuple[int, int], tuple] = {}  # (h, w) input -> (letterbox, forward): region inference
        if not (self.spec.names or names):
            raise ModelMissing(f"model {self.model_name}: {self.path} carries no class names; "
                               "import it with `xueliang models import PATH --name NAME --classes ...`")
        self.names = self.spec.names or names
        self.inference_seconds = 0.0
        self.frames = 0

    def forward(self, image: np.ndarray):
        """The raw model output for one image (what NMS takes): for checks at import."""
        return self._forward(self.preprocess(image))

    def class_ids(self, labels: list[str]) -> list[int]:
        by_name = {v: k for k, v in self.names.items()}
        missing = [lbl for lbl in labels if lbl not in by_name]
        if missing:
            raise ValueError(f"model {self.model_name} has no class {missing}; it knows {sorted(by_name)}")
        return [by_name[lbl] for lbl in labels]

    def preprocess(self, image: np.ndarray) -> np.ndarray:
        x = self._letterbox(image=image)[:, :, ::-1].transpose(2, 0, 1)  # BGR HWC -> RGB CHW
        return np.ascontiguousarray(x, dtype=np.float32)[None] / 255.0

    def detect(self, image: np.ndarray, classes: list[int] | None = None,
               size: tuple[int, int] | None = None) -> Detections:
        return self.detect_batch([image], [classes], size)[0]

    @property
    def resizable(self) -> bool:
        """The model can run at input sizes other than `imgsz` (region inference at the frame's scale):
        the checkpoint, or an OpenVINO export with dynamic height and width (what `xueliang models
        fetch` makes; an older static export runs whole frames only)."""
        if self._resizable is None:
            self._resizable = self.spec.backend == "torch" or (self.spec.backend == "openvino" and _spatially_dynamic(self.path))
        return self._resizable

    def _at(self, size: tuple[int, int]):
        """(letterbox, forward) for a (h, w) input: YOLO is fully convolutional; OpenVINO compiles
        the same weights once per size (kept), torch takes any size."""
        if size not in self._sized:
            from ultralytics.data.augment import LetterBox

            if not self.resizable:
                raise ValueError(f"model {self.model_name}: the {self.spec.backend} engine runs at {self.imgsz} only")
            fwd = self._forward if self.spec.backend == "torch" else _openvino_at(self.path, self._threads, size)
            self._sized[size] = (LetterBox(size, auto=False), fwd)
        return self._sized[size]

    def detect_batch(self, images: list[np.ndarray], classes: list[list[int] | None],
                     size: tuple[int, int] | None = None) -> list[Detections]:
        """One forward pass over all `images` (cameras may differ in size), then NMS per image with
        that image's own class filter: each result is what `detect` gives for the image alone.
        `size`: run at this (h, w) input instead of `imgsz` square (a region, at its frame's scale)."""
        import torch
        from ultralytics.utils import ops
        from ultralytics.utils.nms import non_max_suppression

        t0 = time.perf_counter()
        if size is None or size == (self.imgsz, self.imgsz):
            size, prep, forward = (self.imgsz, self.imgsz), self.preprocess, self._forward
        else:
            box, forward = self._at(size)
            prep = lambda im: np.ascontiguousarray(box(image=im)[:, :, ::-1].transpose(2, 0, 1), dtype=np.float32)[None] / 255.0  # noqa: E731
        x = np.concatenate([prep(im) for im in images]) if len(images) > 1 else prep(images[0])
        raw = forward(x)
        pred = torch.from_numpy(raw) if isinstance(raw, np.ndarray) else raw
        out = []
        for i, (image, cls) in enumerate(zip(images, classes)):
            det = non_max_suppression(pred[i:i + 1], conf_thres=self.min_score, iou_thres=self.iou,
                                      classes=cls)[0]
            det[:, :4] = ops.scale_boxes(size, det[:, :4], image.shape)
            d = det.numpy().astype(np.float32)
            out.append(Detections(d[:, :4].copy(), d[:, 4].copy(), d[:, 5].copy(), self.names, image.shape[:2]))
        self.inference_seconds += time.perf_counter() - t0
        self.frames += len(images)
        return out


def _load_backend(backend: str, path: Path, threads: int, imgsz: int = 640):
    if backend == "openvino":
        import openvino as ov

        xml = next(path.glob("*.xml"), None)
        if xml is None:
            raise ModelMissing(f"{path} is not an OpenVINO export folder (no .xml inside)")
        core = ov.Core()
        config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": threads}
        # An export with dynamic height and width (regions, see `_at`) runs whole frames fixed at imgsz.
        base = core.read_model(str(xml))
        ps = base.input(0).partial_shape
        spatial = ps[2].is_dynamic or ps[3].is_dynamic
        if spatial:
            base.reshape({0: ov.PartialShape([1, 3, imgsz, imgsz])})
        compiled = core.compile_model(base, "CPU", config)
        request = compiled.create_infer_request()
        output = compiled.output(0)
        batched: list = []  # (request, output) of a dynamic-batch compile, made on the first batch

        def forward(x: np.ndarray) -> np.ndarray:
            if x.shape[0] == 1 or compiled.input(0).partial_shape[0].is_dynamic:
                return request.infer({0: x})[output]
            if not batched:
                # The export is fixed at batch 1. A second compile with a dynamic batch dimension
                # (same weights, same kernels: outputs match batch 1 exactly) serves batches; a
                # lone frame stays on the static one, which is a little faster.
                t0 = time.perf_counter()
                model = core.read_model(str(xml))
                shape = model.input(0).partial_shape
                shape[0] = ov.Dimension.dynamic()
                if spatial:
                    shape[2], shape[3] = ov.Dimension(imgsz), ov.Dimension(imgsz)
                model.reshape({0: shape})
                dyn = core.compile_model(model, "CPU", config)
                batched.append((dyn.create_infer_request(), dyn.output(0)))
                log.info("yolo.batch_compiled", model=str(xml), seconds=round(time.perf_counter() - t0, 2))
            req, out = batched[0]
            return req.infer({0: x})[out]

        meta = path / "metadata.yaml"
        names = yaml.safe_load(meta.read_text()).get("names") if meta.is_file() else None
        return forward, {int(k): v for k, v in names.items()} if names else None
    if backend == "onnx":
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        names = session.get_modelmeta().custom_metadata_map.get("names")
        names = ast.literal_eval(names) if names else None
        inp = session.get_inputs()[0]
        fixed_batch = isinstance(inp.shape[0], int)

        def forward(x: np.ndarray) -> np.ndarray:
            if x.shape[0] == 1 or not fixed_batch:
                return session.run(None, {inp.name: x})[0]
            # A fixed-batch export (Ultralytics' default) cannot take a stack: one run per image.
            return np.concatenate([session.run(None, {inp.name: x[i:i + 1]})[0] for i in range(x.shape[0])])

        return forward, {int(k): v for k, v in names.items()} if names else None
    import torch
    from ultralytics.nn.tasks import load_checkpoint

    torch.set_num_threads(threads)
    model, _ = load_checkpoint(str(path))
    model = model.float().eval()

    def forward(x: np.ndarray):
        with torch.inference_mode():
            out = model(torch.from_numpy(x))
        return out[0] if isinstance(out, (list, tuple)) else out

    return forward, {int(k): v for k, v in model.names.items()}


def _spatially_dynamic(path: Path) -> bool:
    import openvino as ov

    xml = next(path.glob("*.xml"), None)
    if xml is None:
        return False
    ps = ov.Core().read_model(str(xml)).input(0).partial_shape
    return len(ps) == 4 and ps[2].is_dynamic and ps[3].is_dynamic


def _openvino_at(path: Path, threads: int, size: tuple[int, int]):
    """The OpenVINO export reshaped to a (h, w) input, any batch."""
    import openvino as ov

    t0 = time.perf_counter()
    core = ov.Core()
    xml = next(path.glob("*.xml"))
    model = core.read_model(str(xml))
    model.reshape({0: ov.PartialShape([ov.Dimension.dynamic(), 3, size[0], size[1]])})
    compiled = core.compile_model(model, "CPU", {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": threads})
    request, output = compiled.create_infer_request(), compiled.output(0)
    log.info("yolo.size_compiled", model=str(xml), size=list(size), seconds=round(time.perf_counter() - t0, 2))
    return lambda x: request.infer({0: x})[output]


def _input_size(backend: str, path: Path) -> int | None:
    """The square input size a static export was made for; None when dynamic or unknown."""
    if backend == "onnx":
        import onnxruntime as ort

        shape = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).get_inputs()[0].shape
    elif backend == "openvino":
        import openvino as ov

        xml = next(path.glob("*.xml"), None)
        if xml is None:
            return None
        ps = ov.Core().read_model(str(xml)).input(0).partial_shape
        shape = [d.get_length() if d.is_static else None for d in ps]
    else:
        return None
    h, w = (shape[2], shape[3]) if len(shape) == 4 else (None, None)
    return h if isinstance(h, int) and h == w else None
