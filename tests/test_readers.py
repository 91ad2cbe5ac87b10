"""Second-stage readers beyond plates: a state classifier on crops (a city's own ONNX model), the
stage that decides when tracks are read, and a real clip whose events carry the state.

The classifier is built here with `onnx.helper` (no weights committed): it calls a crop `full` when
its mean brightness is above one half and `empty` below, through a softmax over two logits."""
from __future__ import annotations

import io
import json
from collections import deque
from pathlib import Path

import numpy as np
import pytest
import yaml

from detectors.lifecycle import IncidentChange
from detectors.readers import Reader
from detectors.readers.classifier import OnnxClassifier
from detectors.readers.reader_config import ClassifierReaderConfig
from detectors.readers.stage import ReaderStage, ReaderUse
from detectors.rules.condition import Condition
from detectors.tracking import Track, TrackPoint
from tests.helpers import DATA_DIR, FIXTURES, REPO
from xueliang.config import ConfigError, load_config
from xueliang.replay import replay


def brightness_model(path: Path, size: int | None = 32, n_out: int = 2) -> Path:
    """ONNX: image (1 x 3 x size x size, 0..1) -> softmax([-(m - 0.5) * 20, (m - 0.5) * 20]), m the mean."""
    import onnx
    from onnx import TensorProto, helper

    dims = [1, 3, size, size] if size else [1, 3, "h", "w"]
    nodes = [
        helper.make_node("ReduceMean", ["image"], ["m"], axes=[1, 2, 3], keepdims=1),  # 1 x 1 x 1 x 1
        helper.make_node("Reshape", ["m", "shape"], ["m2"]),  # 1 x 1
        helper.make_node("Sub", ["m2", "half"], ["d"]),
        helper.make_node("Mul", ["d", "gain"], ["full"]),
        helper.make_node("Neg", ["full"], ["empty"]),
        helper.make_node("Concat", ["empty", "full"] + ["full"] * (n_out - 2), ["logits"], axis=1),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=1),
    ]
    inits = [helper.make_tensor("shape", TensorProto.INT64, [2], [1, 1]),
             helper.make_tensor("half", TensorProto.FLOAT, [], [0.5]),
             helper.make_tensor("gain", TensorProto.FLOAT, [], [20.0])]
    graph = helper.make_graph(nodes, "brightness", [helper.make_tensor_value_info("image", TensorProto.FLOAT, dims)],
                              [helper.make_tensor_value_info("probs", TensorProto.FLOAT, [1, n_out])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def classifier_cfg(path: Path, **kw) -> ClassifierReaderConfig:
    return ClassifierReaderConfig(type="classifier", attribute="bin_state", path=path, labels=["empty", "full"],
                                  classes=["bottle"], **kw)


def test_classifier_reads_the_state_of_a_crop(tmp_path):
    clf = OnnxClassifier(classifier_cfg(brightness_model(tmp_path / "bin.onnx")))
    assert isinstance(clf, Reader) and clf.size == (32, 32)
    bright = clf.read(np.full((90, 60, 3), 230, np.uint8))
    dark = clf.read(np.full((90, 60, 3), 20, np.uint8))
    assert (bright.kind, bright.reader, bright.value) == ("state", "bin_state", "full") and bright.confidence > 0.9
    assert dark.value == "empty" and dark.confidence > 0.9


def test_classifier_problems_are_named(tmp_path):
    with pytest.raises(ValueError, match="gives 3 classes but `labels` names 2"):
        OnnxClassifier(classifier_cfg(brightness_model(tmp_path / "three.onnx", n_out=3)))
    with pytest.raises(ValueError, match="dynamic.*input_size"):
        OnnxClassifier(classifier_cfg(brightness_model(tmp_path / "dyn.onnx", size=None)))
    assert OnnxClassifier(classifier_cfg(tmp_path / "dyn.onnx", input_size=(16, 16))).size == (16, 16)
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="junk.onnx: not a usable ONNX model"):
        OnnxClassifier(classifier_cfg(tmp_path / "junk.onnx"))


def _track(tid: int, points: list[tuple[float, tuple]]) -> Track:
    return Track(tid, "bottle", deque(TrackPoint(t, box, 0.9) for t, box in points), first_seen=points[0][0])


def test_stage_reads_once_stationary_a_few_times_and_again_after_reread(tmp_path):
    cfg = classifier_cfg(brightness_model(tmp_path / "bin.onnx"), stationary_s=2, frames=2, interval_s=1,
                         reread_s=10, min_box_px=8)
    stage = ReaderStage("cam", [ReaderUse(cfg, OnnxClassifier(cfg))])
    image = np.full((100, 100, 3), 230, np.uint8)
    box = (0.2, 0.2, 0.6, 0.6)
    reads = []
    for step in range(0, 29):
        now = step * 0.5
        stage.plan(0, [_track(7, [(t * 0.5, box) for t in range(step + 1)])], now)
        if stage.pending:
            reads.append(now)
            stage.run(image)
    # Still from 0 s: due at 2 s, again 1 s later (frames: 2); a new round 10 s after the first.
    assert reads == [2.0, 3.0, 12.0, 13.0], reads
    change = IncidentChange("opened", "i1", "cam", "r", "z", 14.0, 2.0, Condition("r", "z", 0.0, 0.9, box, (7,)))
    [reading] = stage.readings(0, change)
    assert (reading.value, reading.at) == ("full", 12.0)


def test_stage_reads_an_opening_incident_at_once(tmp_path):
    cfg = classifier_cfg(brightness_model(tmp_path / "bin.onnx"), stationary_s=30, min_box_px=8)
    stage = ReaderStage("cam", [ReaderUse(cfg, OnnxClassifier(cfg))])
    box = (0.2, 0.2, 0.6, 0.6)
    change = IncidentChange("opened", "i1", "cam", "r", "z", 3.0, 3.0, Condition("r", "z", 0.0, 0.9, box, (4,)))
    stage.plan(0, [_track(4, [(0.0, box), (3.0, box)])], 3.0, [change])
    assert stage.pending
    stage.run(np.full((100, 100, 3), 20, np.uint8))
    assert [r.value for r in stage.readings(0, change)] == ["empty"]
    # Its later events carry the reading it opened with.
    cleared = IncidentChange("cleared", "i1", "cam", "r", "z", 9.0, 3.0, change.condition)
    assert [r.value for r in stage.readings(0, cleared)] == ["empty"]


def test_events_carry_the_state_on_a_real_clip(tmp_path):
    """Bottles on a table (real clip, real yolov8n): a presence rule on bottles, the classifier on
    their crops; the incident's events carry `attributes.bin_state`."""
    model = brightness_model(tmp_path / "bin.onnx")
    doc = {
        "data_dir": str(DATA_DIR), "evidence": {"dir": str(tmp_path / "evidence")},
        "cameras": [{
            "id": "shelf", "url": str(FIXTURES / "bottle-detection.mp4"), "analysis_fps": 2, "clip": {"enabled": False},
            "location": {"lon": 117.005, "lat": 36.655, "crs": "wgs84"},
            "zones": [{"name": "table-top", "polygon": [[0, 0], [1, 0], [1, 1], [0, 1]]}],
            "rules": [{"id": "bottles", "type": "dwell", "zone": "table-top", "classes": ["bottle"],
                       "category": "sanitation.exposed-garbage", "min_dwell_s": 3}],
            "readers": [{"type": "classifier", "attribute": "bin_state", "path": str(model),
                         "labels": ["empty", "full"], "classes": ["bottle"], "stationary_s": 1}],
        }],
        "grid": {"path": str(REPO / "configs" / "grids" / "demo-district.geojson")},
    }
    path = tmp_path / "readers.yaml"
    path.write_text(yaml.safe_dump(doc))
    out = io.StringIO()
    replay(load_config(path), "shelf", out, on_frame=lambda t: t < 6.0)
    opened = [json.loads(line) for line in out.getvalue().splitlines() if '"opened"' in line]
    assert opened, out.getvalue()
    state = opened[0]["attributes"]["bin_state"]
    assert state["value"] in ("empty", "full") and 0.5 <= state["confidence"] <= 1.0
    assert opened[0]["plate"] is None


def test_missing_classifier_model_names_the_field(tmp_path):
    doc = yaml.safe_load((REPO / "configs" / "examples" / "table-dwell.yaml").read_text())
    doc["grid"]["path"] = str(REPO / "configs" / "grids" / "demo-district.geojson")
    doc["cameras"][0]["url"] = str(FIXTURES / "bottle-detection.mp4")
    doc["cameras"][0]["readers"] = [{"type": "classifier", "attribute": "bin_state", "path": "nowhere.onnx",
                                     "labels": ["empty", "full"], "classes": ["person"]},
                                    {"type": "classifier", "attribute": "Bad Name", "path": "x.onnx",
                                     "labels": ["a", "b"], "classes": ["person"]}]
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "cameras[0].readers[1].attribute" in str(info.value)
    doc["cameras"][0]["readers"].pop()
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "cameras[0].readers[0].path: classifier model not found" in str(info.value)
