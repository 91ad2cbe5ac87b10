"""A state classifier on a crop: a city's own ONNX model (bin full / empty, manhole cover present / missing).

The model takes one image (N x 3 x H x W, or N x H x W x 3, float) and gives one row of class
scores; probabilities are used as they are, anything else (logits) goes through a softmax. The
crop is resized to the model's input size, scaled to 0..1, then `(x - mean) / std` per channel.
"""
from __future__ import annotations

import cv2
import numpy as np

from detectors.readers import Reading
from detectors.readers.reader_config import ClassifierReaderConfig


class OnnxClassifier:
    """`Reader` over an ONNX image classifier; `read` returns the top class as the state."""

    def __init__(self, cfg: ClassifierReaderConfig, threads: int = 1) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(cfg.path), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own types for a file that is not a model
            raise ValueError(f"{cfg.path}: not a usable ONNX model: {exc}") from None
        self.cfg, self.name = cfg, cfg.attribute
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1:
            raise ValueError(f"{cfg.path}: a classifier has one image input, this model has {len(inputs)}")
        shape = inputs[0].shape
        if len(shape) != 4:
            raise ValueError(f"{cfg.path}: input {inputs[0].name} has shape {shape}; expected N x 3 x H x W "
                             "or N x H x W x 3")
        self.channels_last = shape[3] == 3 and shape[1] != 3
        h, w = (shape[1], shape[2]) if self.channels_last else (shape[2], shape[3])
        if cfg.input_size is not None:
            self.size = cfg.input_size
        elif isinstance(h, int) and isinstance(w, int):
            self.size = (w, h)
        else:
            raise ValueError(f"{cfg.path}: the input size is dynamic ({shape}); set `input_size`")
        n_out = outputs[0].shape[-1]
        if isinstance(n_out, int) and n_out != len(cfg.labels):
            raise ValueError(f"{cfg.path}: the model gives {n_out} classes but `labels` names {len(cfg.labels)}")
        self._input = inputs[0].name
        self._mean = np.array(cfg.mean, dtype=np.float32)
        self._std = np.array(cfg.std, dtype=np.float32)

    def scores(self, image: np.ndarray) -> np.ndarray:
        x = cv2.resize(image, self.size, interpolation=cv2.INTER_AREA)
        if self.cfg.channels == "rgb":
            x = x[..., ::-1]
        x = (x.astype(np.float32) / 255.0 - self._mean) / self._std
        x = x[None] if self.channels_last else x.transpose(2, 0, 1)[None]
        out = np.asarray(self.session.run(None, {self._input: np.ascontiguousarray(x)})[0], dtype=np.float64).ravel()
        if out.size != len(self.cfg.labels):
            raise ValueError(f"{self.cfg.path}: the model gave {out.size} scores for {len(self.cfg.labels)} labels")
        if out.min() < 0 or out.max() > 1 or abs(out.sum() - 1.0) > 1e-3:  # logits
            out = np.exp(out - out.max())
            out /= out.sum()
        return out

    def read(self, image: np.ndarray) -> Reading | None:
        probs = self.scores(image)
        best = int(probs.argmax())
        return Reading("state", self.name, self.cfg.labels[best], float(probs[best]))
