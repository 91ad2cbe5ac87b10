"""A custom model per camera: a real exported model (yolov8n exported to ONNX by Ultralytics, run
by ONNX Runtime) whose `bottle` class is mapped to a sanitation category with its own thresholds."""
from __future__ import annotations

import io
import json

import pytest
import yaml

from detectors import model_store
from tests.helpers import DATA_DIR, FIXTURES, REPO
from xueliang.config import ConfigError, load_config
from xueliang.replay import replay


@pytest.fixture(scope="module")
def onnx_model():
    return model_store.export("yolov8n", "onnx", 640, DATA_DIR)


def config(tmp_path, onnx_model, classes: dict) -> dict:
    doc = {
        "data_dir": str(DATA_DIR),
        "evidence": {"dir": str(tmp_path / "evidence")},
        "cameras": [{
            "id": "shelf", "url": str(FIXTURES / "bottle-detection.mp4"), "analysis_fps": 2,
            "location": {"lon": 117.005, "lat": 36.655, "crs": "wgs84"},
            "zones": [{"name": "table-top", "polygon": [[0, 0.5], [1, 0.5], [1, 1], [0, 1]]}],
            "models": [{"name": "garbage", "path": str(onnx_model), "backend": "onnx", "classes": classes}],
        }],
        "grid": {"path": str(REPO / "configs" / "grids" / "demo-district.geojson")},
    }
    path = tmp_path / "custom.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_custom_model_class_maps_to_its_category(tmp_path, onnx_model):
    path = config(tmp_path, onnx_model, {"bottle": {"category": "sanitation.exposed-garbage", "min_duration_s": 3,
                                                    "min_score": 0.5, "zone": "table-top"}})
    out = io.StringIO()
    replay(load_config(path), "shelf", out)
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    opened = [e for e in events if e["status"] == "opened"]
    # Bottles stand on the table the whole clip: one incident for the zone, open from ~3 s.
    assert len(opened) == 1, events
    ev = opened[0]
    assert 3.0 <= ev["source"]["media_time_s"] <= 5.0
    assert ev["category"]["code"] == "sanitation.exposed-garbage"
    assert ev["detector"]["model"] == "garbage" and ev["detector"]["rule"] == "garbage:bottle"
    assert not [e for e in events if e["status"] == "cleared"]


def test_custom_model_class_thresholds_apply(tmp_path, onnx_model):
    # Nothing in the clip is a bottle at 0.99 confidence: the class's own threshold keeps it quiet.
    path = config(tmp_path, onnx_model, {"bottle": {"category": "sanitation.exposed-garbage", "min_score": 0.99}})
    out = io.StringIO()
    replay(load_config(path), "shelf", out)
    assert out.getvalue() == ""


def test_custom_model_errors_name_the_field(tmp_path, onnx_model):
    path = config(tmp_path, onnx_model, {"bottle": {"category": "no.such", "zone": "nowhere"}})
    with pytest.raises(ConfigError) as info:
        load_config(path)
    text = str(info.value)
    assert "cameras[0].models[0].classes.bottle.category" in text and "cameras[0].models[0].classes.bottle.zone" in text
