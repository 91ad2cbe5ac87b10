"""The model registry with real models other than the built-in one: yolov8n exported by
Ultralytics to ONNX at 320, and a 3-class checkpoint cut from it with renamed classes (imported
as .pt, exported at import). Both run on a fixture clip (its first 12 s), as the main model and
as an extra one, and their events carry the model's name and sha256. Bad imports leave the
registry as it was.

The Ultralytics exports are slow on a small CPU: each is made once for this module.
"""
from __future__ import annotations

import io
import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from detectors.model_import import ImportRefused, import_model
from detectors.model_store import sha256_of
from detectors.registry import Registry, RegistryError
from tests.helpers import FIXTURES, REPO, xueliang
from tests.model_factory import export_onnx, reduced_checkpoint, segmentation_checkpoint, short_clip, without_metadata
from xueliang.cli import main
from xueliang.config import ConfigError, load_config
from xueliang.replay import replay

STREET3 = ["pedestrian", "vehicle", "bottle"]  # yolov8n's person, car and bottle


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    work = tmp_path_factory.mktemp("models")
    data = work / "data"
    onnx320 = export_onnx(work, 320)
    street3 = reduced_checkpoint(work / "street3.pt", [0, 2, 39], STREET3)
    coco = import_model(onnx320, "coco320", data, ["onnx"])
    s3 = import_model(street3, "street3", data, ["onnx"], imgsz=320)
    clip = short_clip(FIXTURES / "bottle-detection.mp4", work / "bottles-12s.mp4", 12.0)  # bottles from the start
    return {"work": work, "data": data, "clip": clip, "onnx320": onnx320, "street3_pt": street3,
            "coco320": coco, "street3": s3}


def snapshot(data: Path) -> list[str]:
    root = Registry(data).root
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_imports_are_recorded(models, capsys):
    s3, coco = models["street3"], models["coco320"]
    assert s3.classes == STREET3 and s3.imgsz == 320 and s3.task == "detect" and s3.source.kind == "pt"
    assert s3.sha256 == sha256_of(models["street3_pt"]) and s3.imported_at
    # yolov8n's people in bus.jpg, found by the cut-down model under their new name.
    assert s3.validation["frame"] == "bus.jpg" and s3.validation["onnx"]["detections"] >= 1
    assert s3.validation["onnx"]["output"] == [1, 4 + 3, 2100]
    # The ONNX export's own metadata gave the 80 COCO names and its input size.
    assert len(coco.classes) == 80 and coco.classes[39] == "bottle" and coco.imgsz == 320
    assert coco.source.kind == "onnx" and coco.sha256 == sha256_of(models["onnx320"])
    assert (models["data"] / "models" / coco.exports["onnx"]).is_file()

    assert main(["models", "list", "--data-dir", str(models["data"])]) == 0
    listed = capsys.readouterr().out
    assert "coco320" in listed and "street3" in listed and "yolov8n" in listed
    assert main(["models", "show", "street3", "--data-dir", str(models["data"])]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["classes"] == STREET3 and shown["sha256"] == s3.sha256 and shown["exports"] == s3.exports


def camera_config(models, tmp_path: Path, model: dict, camera: dict) -> Path:
    doc = {
        "data_dir": str(models["data"]),
        "evidence": {"dir": str(tmp_path / "evidence")},
        "model": model,
        "cameras": [{
            "id": "shelf", "url": str(models["clip"]), "analysis_fps": 1,
            "location": {"lon": 117.005, "lat": 36.655, "crs": "wgs84"},
            "zones": [{"name": "table-top", "polygon": [[0, 0.5], [1, 0.5], [1, 1], [0, 1]]}],
            **camera,
        }],
        "grid": {"path": str(REPO / "configs" / "grids" / "demo-district.geojson")},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


BOTTLE = {"category": "sanitation.exposed-garbage", "min_duration_s": 3, "min_score": 0.3, "zone": "table-top"}


def test_registered_models_run_and_events_carry_them(models, tmp_path):
    """street3 as the main model (its class `bottle` mapped to a category), coco320 as an extra
    model by registry name: each event names the model that produced it, with its sha256."""
    path = camera_config(models, tmp_path, {"name": "street3", "backend": "onnx"},
                         {"classes": {"bottle": BOTTLE},
                          "models": [{"model": "coco320", "classes": {"bottle": BOTTLE}}]})
    out = io.StringIO()
    replay(load_config(path), "shelf", out)
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    opened = {e["detector"]["rule"]: e for e in events if e["status"] == "opened"}
    assert set(opened) == {"model:bottle", "coco320:bottle"}, events
    main_ev, extra_ev = opened["model:bottle"], opened["coco320:bottle"]
    assert main_ev["detector"]["model"] == "street3"
    assert main_ev["detector"]["model_sha256"] == models["street3"].sha256
    assert extra_ev["detector"]["model"] == "coco320"
    assert extra_ev["detector"]["model_sha256"] == models["coco320"].sha256
    assert main_ev["category"]["code"] == "sanitation.exposed-garbage"
    assert main_ev["detector"]["config_hash"] == extra_ev["detector"]["config_hash"]
    assert main_ev["source"]["media_time_s"] <= 8.0
    schema = json.loads((REPO / "docs" / "event.schema.json").read_text(encoding="utf-8"))
    for ev in events:
        jsonschema.validate(ev, schema)


def test_check_config_names_the_field(models, tmp_path):
    cases = [
        ({"name": "no-such-model"}, {}, "model.name", "no model 'no-such-model'"),
        ({"name": "street3", "backend": "openvino"}, {}, "model.backend", "exported for ['onnx']"),
        ({"name": "street3", "backend": "onnx", "imgsz": 640}, {}, "model.imgsz", "imported at imgsz 320"),
        ({"name": "street3", "backend": "onnx"},
         {"rules": [{"id": "r", "type": "dwell", "category": "market.road-occupation", "zone": "table-top",
                     "classes": ["person"], "min_dwell_s": 3}]},
         "cameras[0].rules[0].classes", "model street3 has no class ['person']"),
        ({"name": "street3", "backend": "onnx"}, {"classes": {"person": BOTTLE}},
         "cameras[0].classes.person", "no class"),
        ({"name": "street3", "backend": "onnx"}, {"objects": {"car": {"min_score": 0.5}}},
         "cameras[0].objects.car", "no class"),
        ({"name": "street3", "backend": "onnx"}, {"models": [{"model": "nope", "classes": {"bottle": BOTTLE}}]},
         "cameras[0].models[0].model", "no model 'nope'"),
        ({"name": "street3", "backend": "onnx"}, {"models": [{"model": "coco320", "classes": {"bin": BOTTLE}}]},
         "cameras[0].models[0].classes.bin", "model coco320 has no class ['bin']"),
    ]
    for model, camera, field, message in cases:
        with pytest.raises(ConfigError) as info:
            load_config(camera_config(models, tmp_path, model, camera))
        assert f"{field}: " in str(info.value) and message in str(info.value), (field, str(info.value))


def test_bad_imports_fail_and_leave_the_registry_unchanged(models, capsys):
    data, work = models["data"], models["work"]
    before = snapshot(data)
    text = work / "notes.onnx"
    text.write_text("not a model\n")
    fake_pt = work / "notes.pt"
    fake_pt.write_text("not a model\n")
    nometa = without_metadata(models["onnx320"], work / "nometa.onnx")
    cases = [
        (text, {}, "not an ONNX model"),
        (fake_pt, {}, "not an Ultralytics checkpoint"),
        (work / "street3.txt", {}, "no such file"),
        (segmentation_checkpoint(work / "seg.pt"), {}, "a segment model; only detection models"),
        (nometa, {}, "the class list is missing"),
        # Too few names for the model's 80 outputs: the check on the bundled frame catches it.
        (nometa, {"classes": ["bin", "bag"]}, "not a detector's with 2 classes"),
        (models["onnx320"], {"imgsz": 640}, "only a checkpoint (.pt) can be exported at another size"),
        (models["onnx320"], {"name": "yolov8n"}, "the built-in model's name"),
        (models["onnx320"], {"name": "Bad Name"}, "use lower-case letters"),
    ]
    for path, kw, message in cases:
        with pytest.raises(ImportRefused) as info:
            import_model(path, kw.pop("name", "bad"), data, ["onnx"], **kw)
        assert message in str(info.value), (path, str(info.value))
        assert snapshot(data) == before
    with pytest.raises(RegistryError, match="already registered"):
        import_model(models["onnx320"], "coco320", data, ["onnx"])
    # The command line says so and exits 2.
    assert main(["models", "import", str(text), "--name", "bad", "--data-dir", str(data)]) == 2
    err = capsys.readouterr().err
    assert "not an ONNX model" in err and "nothing was registered" in err
    assert snapshot(data) == before


def test_class_names_from_a_file_then_remove(models, capsys):
    """A model without metadata takes its names from a names file; `models remove` drops it."""
    data, work = models["data"], models["work"]
    nometa = without_metadata(models["onnx320"], work / "vendor.onnx")
    names = work / "names.txt"
    names.write_text("\n".join(f"thing-{i}" for i in range(80)) + "\n")
    assert main(["models", "import", str(nometa), "--name", "vendor", "--classes-file", str(names),
                 "--backend", "onnx", "--data-dir", str(data)]) == 0
    entry = Registry(data).get("vendor")
    assert entry.classes[39] == "thing-39" and entry.imgsz == 320  # size from the input shape
    assert main(["models", "remove", "vendor", "--data-dir", str(data)]) == 0
    assert "vendor" not in Registry(data).names()
    assert main(["models", "remove", "vendor", "--data-dir", str(data)]) == 1
    assert "no model 'vendor'" in capsys.readouterr().err


def test_eval_compares_models_side_by_side(models, tmp_path):
    path = camera_config(models, tmp_path, {"name": "street3", "backend": "onnx"}, {"classes": {"bottle": BOTTLE}})
    labels = tmp_path / "labels.yaml"
    labels.write_text(yaml.safe_dump({"clips": [{"camera": "shelf", "expected": [
        {"rule": "model:bottle", "start": 0.0, "end": 12.0}]}]}))
    scores = tmp_path / "scores.json"
    res = xueliang("eval", "-c", str(path), "--labels", str(labels), "--model", "street3", "--model", "coco320",
                   "--json", str(scores), timeout=600)
    assert res.returncode == 0, res.stderr
    doc = json.loads(scores.read_text())
    assert set(doc) == {"street3", "coco320"}
    for name in ("street3", "coco320"):
        assert doc[name]["sha256"] == models[name].sha256
        assert doc[name]["rules"]["model:bottle"]["tp"] == 1, doc
    lines = res.stdout.splitlines()
    assert any(line.startswith("model:bottle") and "street3" in line for line in lines), res.stdout
    assert any("coco320" in line and not line.startswith("models:") for line in lines), res.stdout
    # A model the registry does not have is refused before anything runs.
    res = xueliang("eval", "-c", str(path), "--labels", str(labels), "--model", "nope")
    assert res.returncode == 2 and "--model nope: model.name" in res.stderr


def test_extra_model_is_named_by_registry_or_by_path():
    from detectors.detector_config import CustomModelConfig

    cls = {"bottle": BOTTLE}
    by_name = CustomModelConfig(model="coco320", classes=cls)
    assert by_name.name == "coco320" and by_name.rules()[0].id == "coco320:bottle"
    assert by_name.engine("openvino").backend == "openvino" and by_name.engine("torch").backend == "onnx"
    assert CustomModelConfig(name="garbage", path="m.onnx", classes=cls).engine("openvino").backend == "onnx"
    for bad in ({"model": "a", "path": "m.onnx", "name": "a"}, {}, {"path": "m.onnx"}):
        with pytest.raises(ValueError):
            CustomModelConfig(classes=cls, **bad)
