"""The config is validated at start-up; every error names the file and the field path."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.helpers import REPO, xueliang
from xueliang.config import ConfigError, load_config

GRID = REPO / "configs" / "grids" / "demo-district.geojson"
CLIP = REPO / "configs" / "media" / "table-stays.mp4"


def base_config() -> dict:
    return {
        "cameras": [{
            "id": "cam1",
            "url": str(CLIP),
            "location": {"lon": 117.005, "lat": 36.655, "crs": "wgs84"},
            "zones": [{"name": "z", "polygon": [[0.1, 0.1], [0.9, 0.1], [0.9, 0.9]]}],
            "rules": [{"id": "r", "type": "dwell", "category": "market.road-occupation", "zone": "z",
                       "classes": ["person"], "min_dwell_s": 5}],
        }],
        "grid": {"path": str(GRID)},
    }


def write(tmp_path: Path, doc: dict) -> Path:
    path = tmp_path / "service.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    return path


def problems_of(tmp_path: Path, doc: dict) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, doc))
    return info.value.lines()


@pytest.mark.parametrize("example", ["configs/demo.yaml", "configs/examples/table-dwell.yaml"])
def test_shipped_configs_are_valid(example):
    cfg = load_config(REPO / example)
    assert cfg.cameras and cfg.grid.path.exists()


def test_relative_paths_resolve_against_the_config_file(tmp_path):
    (tmp_path / "layers").mkdir()
    (tmp_path / "layers" / "grid.geojson").write_bytes(GRID.read_bytes())
    doc = base_config()
    doc["grid"]["path"] = "layers/grid.geojson"
    cfg = load_config(write(tmp_path, doc))
    assert cfg.grid.path == (tmp_path / "layers" / "grid.geojson").resolve()


@pytest.mark.parametrize(
    "mutate, path, words",
    [
        (lambda d: d["cameras"][0].__setitem__("analysis_fps", -1), "cameras[0].analysis_fps", "greater than 0"),
        (lambda d: d["cameras"][0]["rules"][0].__setitem__("min_dwell_s", "long"), "cameras[0].rules[0].min_dwell_s", "number"),
        (lambda d: d["cameras"][0]["rules"][0].__setitem__("zone", "nowhere"), "cameras[0].rules[0].zone", "no zone 'nowhere'"),
        (lambda d: d["cameras"][0]["rules"][0].__setitem__("category", "x.y"), "cameras[0].rules[0].category", "unknown category"),
        (lambda d: d["cameras"][0]["rules"][0].__setitem__("classes", ["dragon"]), "cameras[0].rules[0].classes", "dragon"),
        (lambda d: d["cameras"][0]["rules"][0].__setitem__("type", "teleport"), "cameras[0].rules[0].type", "dwell"),
        (lambda d: d["cameras"][0]["zones"][0].__setitem__("polygon", [[0, 0], [2, 0], [1, 1]]), "cameras[0].zones[0].polygon", "outside the image"),
        (lambda d: d["cameras"][0]["zones"][0].__setitem__("polygon", [[0, 0], [1, 1], [1, 0], [0, 1]]), "cameras[0].zones[0].polygon", "intersects itself"),
        (lambda d: d["cameras"][0]["location"].__setitem__("crs", "mars"), "cameras[0].location.crs", "wgs84"),
        (lambda d: d["cameras"][0].__setitem__("url", "/nope/missing.mp4"), "cameras[0].url", "not found"),
        (lambda d: d["cameras"][0].__setitem__("colour", "red"), "cameras[0].colour", "Extra inputs"),
        (lambda d: d["cameras"].append(dict(d["cameras"][0])), "cameras", "unique"),
        (lambda d: d["grid"].__setitem__("path", "/nope/grid.geojson"), "grid.path", "not found"),
        (lambda d: d.__setitem__("kafka", {"bootstrap_servers": 12}), "kafka.bootstrap_servers", "string"),
    ],
)
def test_each_error_names_file_and_field(tmp_path, mutate, path, words):
    doc = base_config()
    mutate(doc)
    lines = problems_of(tmp_path, doc)
    hits = [line for line in lines if f"service.yaml: {path}:" in line]
    assert hits, lines
    assert words in hits[0], hits


def test_all_problems_are_reported_together(tmp_path):
    doc = base_config()
    doc["cameras"][0]["analysis_fps"] = 0
    doc["cameras"][0]["location"]["lat"] = 123
    lines = problems_of(tmp_path, doc)
    assert any("cameras[0].analysis_fps" in l for l in lines)
    assert any("cameras[0].location.lat" in l for l in lines)


def test_yaml_syntax_error_names_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("cameras:\n  - id: a\n    url: [unclosed\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "broken.yaml" in str(info.value) and "line" in str(info.value)


def test_check_config_cli_prints_errors_and_exits_2(tmp_path):
    doc = base_config()
    doc["cameras"][0]["rules"][0]["min_dwell_s"] = -3
    path = write(tmp_path, doc)
    res = xueliang("check-config", str(path))
    assert res.returncode == 2
    assert f"{path}: cameras[0].rules[0].min_dwell_s: Input should be greater than 0" in res.stderr


def test_check_config_cli_ok():
    res = xueliang("check-config", "configs/examples/table-dwell.yaml")
    assert res.returncode == 0, res.stderr
    assert "ok" in res.stdout


def test_run_refuses_to_start_on_the_same_errors(tmp_path):
    doc = base_config()
    doc["cameras"][0]["rules"][0]["zone"] = "nowhere"
    path = write(tmp_path, doc)
    res = xueliang("run", "-c", str(path), timeout=60)
    assert res.returncode == 2
    assert "cameras[0].rules[0].zone" in res.stderr and "nothing was started" in res.stderr
