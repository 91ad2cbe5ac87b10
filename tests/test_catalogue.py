"""The category catalogue is data (configs/categories.yaml) and events carry its routing."""
from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest

from bridge.events.catalogue import DEFAULT_CATALOGUE, Catalogue
from bridge.bridge_config import LocationConfig
from bridge.events.builder import CameraContext, EventFactory
from bridge.location.grid import CodeScheme, GridIndex
from detectors.lifecycle import IncidentChange
from detectors.rules.condition import Condition
from tests.helpers import REPO, SHARED

CONFIGURED = REPO / "configs" / "categories.yaml"


def test_packaged_default_matches_the_configs_copy():
    assert DEFAULT_CATALOGUE.read_text(encoding="utf-8") == CONFIGURED.read_text(encoding="utf-8")


def test_seeded_from_the_domain_routing_table():
    cat = Catalogue.load(CONFIGURED)
    majors = {e.major for e in cat.by_code.values()}
    # every category row of the street office's routing table (DOMAIN.md) has entries
    for major in ["市容秩序", "环卫保洁", "环境保护", "安全生产", "市政设施", "园林绿化", "建筑工地",
                  "治安秩序", "便民市场"]:
        assert major in majors, major
    domain = (SHARED / "DOMAIN.md").read_text(encoding="utf-8") if SHARED.exists() else None
    for e in cat.by_code.values():
        assert e.routing.unit and 1 <= e.priority <= 3
        if domain is not None and e.major != "设备运维":
            assert e.major in domain, e.code
    assert cat["environment.straw-burning"].unit == "农业办"  # routed to agriculture, per DOMAIN
    assert cat["public-order.crowd-gathering"].routing.unit == "派出所"


@pytest.mark.parametrize("text, match", [
    ("categories:\n  - {code: a.b, name: x, major: y}\n", r"categories\[0\]\.routing: Field required"),
    ("categories:\n  - {code: a.b, name: x, major: y, routing: {unit: u, priority: 7}}\n",
     r"categories\[0\]\.routing\.priority"),
    ("categories:\n  - {code: Bad, name: x, major: y, routing: {unit: u}}\n", r"categories\[0\]\.code"),
    ("categories: [\n", "invalid YAML"),
])
def test_bad_catalogue_names_file_and_field(tmp_path, text, match):
    p = tmp_path / "cats.yaml"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=match) as exc:
        Catalogue.load(p)
    assert str(p) in str(exc.value)


def test_events_carry_category_routing_and_priority():
    factory = EventFactory(GridIndex.load(REPO / "configs" / "grids" / "demo-district.geojson", CodeScheme()),
                           Catalogue.load(CONFIGURED))
    ctx = CameraContext(camera_id="c", location=LocationConfig(lon=117.015, lat=36.665, crs="wgs84"),
                        categories={"r": "municipal.manhole-cover"}, model="m", config_hash="h")
    cond = Condition(rule_id="r", zone=None, since=0, score=0.7, bbox=None)
    ev = factory.make(IncidentChange("opened", "i", "c", "r", None, 0, 0, cond), ctx,
                      datetime.now(timezone.utc), None)
    assert (ev.category.code, ev.category.name, ev.category.major) == ("municipal.manhole-cover", "窨井盖损坏丢失", "市政设施")
    assert ev.routing.unit == "建设办" and ev.routing.priority == 1 and ev.priority == 1
    assert re.fullmatch(r"\d{15}", ev.grid.code)
