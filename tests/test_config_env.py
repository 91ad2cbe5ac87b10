"""`XUELIANG__SECTION__FIELD` variables override config fields; `XUELIANG_CONFIG` names the file."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import DATA_DIR, REPO
from tests.test_config import CLIP, GRID, base_config, write
from xueliang.config import ConfigError, load_config


def problems(path: Path | None, environ: dict) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path, environ=environ)
    return info.value.lines()


def test_overrides_are_typed_by_yaml_and_win_over_the_file(tmp_path):
    doc = base_config()
    doc["api"] = {"port": 8000, "host": "127.0.0.1"}
    cfg = load_config(write(tmp_path, doc), environ={
        "XUELIANG__API__PORT": "9123",                        # an int
        "XUELIANG__API__ENABLED": "false",                    # a bool
        "XUELIANG__KAFKA__BOOTSTRAP_SERVERS": "kafka:9092",  # a section the file lacks
        "XUELIANG__API__CORS_ORIGINS": "[http://a.example, http://b.example]",  # a flow list
        "XUELIANG__log__Level": "debug",                     # names are lower-cased
        "XUELIANG__MERGE__RADIUS_M": "12.5",
        "XUELIANG_DATA_DIR": str(tmp_path / "from-data-dir-var"),
        "XUELIANG__DATA_DIR": str(tmp_path / "from-override"),
        "OTHER__API__PORT": "1",                             # not ours
    })
    assert cfg.api.port == 9123 and cfg.api.enabled is False and cfg.api.host == "127.0.0.1"
    assert cfg.kafka.bootstrap_servers == "kafka:9092"
    assert cfg.api.cors_origins == ["http://a.example", "http://b.example"]
    assert cfg.log.level == "debug" and cfg.merge.radius_m == 12.5
    assert cfg.data_dir == tmp_path / "from-override"


def test_the_process_environment_is_read_by_default(tmp_path, monkeypatch):
    monkeypatch.setenv("XUELIANG__TRACKER__MATCH_IOU", "0.7")
    assert load_config(write(tmp_path, base_config())).tracker.match_iou == 0.7


def test_text_fields_take_the_text_as_it_is(tmp_path):
    # YAML would make these an int, a bool and an int; the fields hold text, so they stay text.
    cfg = load_config(write(tmp_path, base_config()), environ={
        "XUELIANG__MQTT__PASSWORD": "123456", "XUELIANG__MQTT__CLIENT_ID": "yes", "XUELIANG__MQTT__PROTOCOL": "5",
        "XUELIANG__KAFKA__FEEDBACK_TOPIC": "",  # empty unsets a field that may be unset
        "XUELIANG__KAFKA__BOOTSTRAP_SERVERS": "null",
    })
    assert cfg.mqtt.password.get_secret_value() == "123456" and cfg.mqtt.client_id == "yes"
    assert cfg.mqtt.protocol == "5"
    assert cfg.kafka.feedback_topic is None and cfg.kafka.bootstrap_servers is None


def test_a_value_that_is_not_yaml_is_taken_as_text(tmp_path):
    cfg = load_config(write(tmp_path, base_config()), environ={"XUELIANG__KAFKA__CLIENT_ID": "worker: [1"})
    assert cfg.kafka.client_id == "worker: [1"


def test_a_bad_value_names_the_variable_and_the_field(tmp_path):
    path = write(tmp_path, base_config())
    lines = problems(path, {"XUELIANG__API__PORT": "eighty", "XUELIANG__API__PORTT": "1", "XUELIANG__LOG__LEVEL": "loud"})
    assert f"{path}: env XUELIANG__API__PORT: api.port: Input should be a valid integer, unable to parse string as an integer" in lines
    assert f"{path}: env XUELIANG__API__PORTT: api.portt: Extra inputs are not permitted" in lines
    assert any(line.startswith(f"{path}: env XUELIANG__LOG__LEVEL: log.level: Input should be 'debug'") for line in lines)
    assert len(lines) == 3


def test_a_field_checked_after_validation_still_names_the_variable(tmp_path):
    lines = problems(write(tmp_path, base_config()), {"XUELIANG__GRID__PATH": str(tmp_path / "missing.geojson")})
    assert lines == [f"{tmp_path / 'service.yaml'}: env XUELIANG__GRID__PATH: grid.path: file not found: {tmp_path / 'missing.geojson'}"]


def test_a_problem_of_the_file_is_not_blamed_on_a_variable(tmp_path):
    doc = base_config()
    doc["api"] = {"port": "eighty"}
    lines = problems(write(tmp_path, doc), {"XUELIANG__API__HOST": "0.0.0.0"})
    assert lines == [f"{tmp_path / 'service.yaml'}: api.port: Input should be a valid integer, unable to parse string as an integer"]


def test_list_items_and_scalars_cannot_be_descended_into(tmp_path):
    doc = base_config()
    doc["log"] = {"level": "info"}
    path = write(tmp_path, doc)
    lines = problems(path, {"XUELIANG__CAMERAS__0__URL": "rtsp://x/1", "XUELIANG__LOG__LEVEL__X": "1",
                            "XUELIANG__API__": "1"})
    assert lines == [
        f"{path}: env XUELIANG__API__: empty field name (a double underscore at the end, or four in a row?)",
        f"{path}: env XUELIANG__CAMERAS__0__URL: cameras is a list: its items cannot be addressed by environment "
        "variables, only the whole list as a YAML flow value",
        f"{path}: env XUELIANG__LOG__LEVEL__X: log.level is a str, not a section",
    ]


def test_no_file_at_all_the_environment_is_the_config(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)  # relative paths resolve against the working directory
    cfg = load_config(None, environ={
        "XUELIANG__GRID__PATH": "configs/grids/demo-district.geojson",
        "XUELIANG__CAMERAS": "[{id: a, url: configs/media/table-stays.mp4, location: {lon: 117.0, lat: 36.6, crs: wgs84}}]",
    })
    assert cfg.grid.path == GRID and cfg.cameras[0].url == str(CLIP)
    lines = problems(None, {"XUELIANG__GRID__PATH": str(GRID), "XUELIANG__CAMERAS": "[{id: a, url: x}]"})
    assert "<environment>: env XUELIANG__CAMERAS: cameras[0].location: Field required" in lines


def cli(*args: str, env: dict, cwd: Path = REPO) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("XUELIANG")}
    return subprocess.run([sys.executable, "-m", "xueliang.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env={**base, "XUELIANG_DATA_DIR": str(DATA_DIR), **env})


def test_cli_reads_xueliang_config_and_overrides(tmp_path):
    path = write(tmp_path, base_config())
    ok = cli("check-config", env={"XUELIANG_CONFIG": str(path), "XUELIANG__API__PORT": "9000"})
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == f"{path}: ok (1 camera(s), 1 rule(s), 0 sensor(s))"
    bad = cli("run", env={"XUELIANG_CONFIG": str(path), "XUELIANG__API__PORT": "eighty"})
    assert bad.returncode == 2
    assert f"{path}: env XUELIANG__API__PORT: api.port: Input should be a valid integer" in bad.stderr
    assert "nothing was started" in bad.stderr
    # -c wins over XUELIANG_CONFIG
    other = cli("check-config", str(path), env={"XUELIANG_CONFIG": str(tmp_path / "missing.yaml")})
    assert other.returncode == 0, other.stderr


def test_cli_without_any_config_says_how_to_give_one(tmp_path):
    none = cli("run", env={"PYTHONPATH": str(REPO)}, cwd=tmp_path)  # no XUELIANG_CONFIG, no .yaml here
    assert none.returncode == 2
    assert "no config: pass -c FILE, or set XUELIANG_CONFIG" in none.stderr
