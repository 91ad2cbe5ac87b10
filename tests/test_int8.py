"""`model.precision: int8` (issue 13, item 4): the INT8 export is made at `xueliang models fetch
--int8`, never at run time; a config that asks for it without it, or for another engine, is told
what to run. The quantisation itself (NNCF, 2-3 minutes on the bundled clip) and its accuracy
against FP32 are measured in docs/benchmarks.md, not here."""
from __future__ import annotations

import pytest

from detectors.detector_config import ModelConfig
from detectors.model_store import ModelMissing, export_path
from detectors.yolo import model_spec


def test_int8_without_its_export_names_the_command(tmp_path):
    with pytest.raises(ModelMissing, match=r"xueliang models fetch --backend openvino --imgsz 640 --int8"):
        model_spec(ModelConfig(precision="int8"), tmp_path)


def test_int8_runs_on_openvino_only(tmp_path):
    with pytest.raises(ModelMissing, match="INT8 runs on the openvino engine only, not onnx"):
        model_spec(ModelConfig(precision="int8", backend="onnx"), tmp_path)
    assert export_path("yolov8n", "openvino", 640, tmp_path, "int8").name == "yolov8n-640-int8_openvino_model"


def test_precision_is_validated():
    with pytest.raises(ValueError, match="precision"):
        ModelConfig(precision="int4")
