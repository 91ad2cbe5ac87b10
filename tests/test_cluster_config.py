"""Cluster settings are checked at start-up; the registry spreads cameras over partitions."""
from __future__ import annotations

import pytest
import yaml

from tests.helpers import REPO
from xueliang.config import ConfigError, load_config
from bridge.kafka.camera_registry import place


def write(tmp_path, **doc):
    doc.setdefault("grid", {"path": str(REPO / "configs/grids/demo-district.geojson")})
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_cluster_needs_kafka_and_takes_cameras_from_the_registry(tmp_path):
    with pytest.raises(ConfigError) as exc:
        load_config(write(tmp_path, cluster={"enabled": True}))
    assert "`cluster.enabled` needs `kafka.bootstrap_servers`" in str(exc.value)
    cams = yaml.safe_load((REPO / "configs/demo.yaml").read_text())["cameras"]
    cams[0]["url"] = str(REPO / "configs/media/table-stays.mp4")
    with pytest.raises(ConfigError) as exc:
        load_config(write(tmp_path, cluster={"enabled": True}, kafka={"bootstrap_servers": "127.0.0.1:9"}, cameras=cams))
    assert "xueliang cameras publish" in str(exc.value)
    cfg = load_config(write(tmp_path, cluster={"enabled": True, "worker_id": "w-1"},
                            kafka={"bootstrap_servers": "127.0.0.1:9"}))
    assert cfg.cluster.worker_name() == "w-1" and cfg.cameras == []
    with pytest.raises(ConfigError) as exc:
        load_config(write(tmp_path, cluster={"enabled": True, "worker_id": "bad id!"},
                          kafka={"bootstrap_servers": "127.0.0.1:9"}))
    assert "cluster.worker_id" in str(exc.value)


def test_new_cameras_go_to_the_least_loaded_partition_and_placed_ones_stay():
    assert place({}, ["a", "b", "c", "d", "e"], 4) == {"a": 0, "b": 1, "c": 2, "d": 3, "e": 0}
    assert place({"x": 0, "y": 0, "z": 2}, ["n1", "n2", "n3"], 3) == {"n1": 1, "n2": 1, "n3": 2}


def test_clustered_sensors_need_a_shared_subscription_group(tmp_path):
    demo = yaml.safe_load((REPO / "configs/demo.yaml").read_text())
    for dev in demo["sensors"]["devices"]:
        dev.pop("cameras", None)
    doc = dict(cluster={"enabled": True}, kafka={"bootstrap_servers": "127.0.0.1:9"}, mqtt=demo["mqtt"],
               sensors=demo["sensors"])
    with pytest.raises(ConfigError) as exc:
        load_config(write(tmp_path, **doc))
    assert "mqtt.shared_group" in str(exc.value)
    doc["mqtt"]["shared_group"] = "xueliang"
    assert load_config(write(tmp_path, **doc)).mqtt.shared_group == "xueliang"
