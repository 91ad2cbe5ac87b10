"""The merge stage on real events (real factory, catalogue and demo grid layer): two cameras that
see one problem give one incident listing both; statuses follow the merged incident."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from bridge.events.catalogue import Catalogue
from bridge.bridge_config import LocationConfig
from bridge.events.builder import CameraContext, EventFactory
from bridge.location.coordinates import LocalMetric
from bridge.location.grid import CodeScheme, GridIndex
from bridge.merging.rewrite import MergeConfig, MergeStage
from detectors.lifecycle import IncidentChange
from detectors.rules.condition import Condition
from tests.helpers import REPO

T0 = datetime(2026, 11, 22, 8, tzinfo=timezone(timedelta(hours=8)))
HERE = LocalMetric(117.005, 36.655)  # the demo camera's position, grid 990001001002002
FACTORY = EventFactory(GridIndex.load(REPO / "configs/grids/demo-district.geojson", CodeScheme()), Catalogue.load())


def camera(cid: str, east_m: float, crs: str = "wgs84") -> CameraContext:
    lon, lat = HERE.to_lonlat(east_m, 0.0)
    return CameraContext(camera_id=cid, location=LocationConfig(lon=lon, lat=lat, crs=crs),
                         categories={"r": "market.road-occupation", "g": "sanitation.garbage-overflow"},
                         model="yolov8n", config_hash="abc")


def event(cam: CameraContext, status: str, iid: str, t: float, rule: str = "r"):
    cond = Condition(rule_id=rule, zone="z", since=0.0, score=0.8, bbox=(0.1, 0.2, 0.3, 0.9))
    return FACTORY.make(IncidentChange(status, iid, cam.camera_id, rule, "z", t, 0.0, cond), cam,
                        T0 + timedelta(seconds=t))


def test_two_cameras_one_incident_listing_both_sources():
    stage = MergeStage(MergeConfig(radius_m=50, window_s=300))
    a, b = camera("a", 0), camera("b", 30)
    raw = [event(a, "opened", "a1", 0), event(b, "opened", "b1", 20), event(a, "updated", "a1", 30),
           event(a, "cleared", "a1", 60), event(b, "cleared", "b1", 90)]
    out = [stage.apply(e) for e in raw]
    assert [e.event_id for e in out] == [e.event_id for e in raw]  # the message identity is kept
    assert [e.incident_id for e in out] == ["a1"] * 5
    assert [e.status for e in out] == ["opened", "updated", "updated", "updated", "cleared"]
    assert [e.source.camera_id for e in out] == ["a", "b", "a", "a", "b"]  # who reported each event
    assert [(s.camera_id, s.incident_id, s.active) for s in out[1].sources] == [("a", "a1", True), ("b", "b1", True)]
    assert [(s.camera_id, s.active) for s in out[3].sources] == [("a", False), ("b", True)]
    assert [(s.camera_id, s.active) for s in out[4].sources] == [("a", False), ("b", False)]
    assert stage.merger.by_grid == {} and stage._home == {} and stage._meta == {}  # nothing left behind


def test_far_late_or_other_category_stay_separate_and_single_source_is_unchanged():
    stage = MergeStage(MergeConfig(radius_m=50, window_s=300))
    a = camera("a", 0)
    first = event(a, "opened", "a1", 0)
    assert stage.apply(first) == first  # one source: exactly what the factory made
    for other in (event(camera("far", 80), "opened", "f1", 10),
                  event(camera("late", 10), "opened", "l1", 400),
                  event(camera("cat", 10), "opened", "c1", 10, rule="g")):
        got = stage.apply(other)
        assert got.incident_id == other.incident_id and got.status == "opened" and len(got.sources) == 1


def test_positions_in_different_crs_are_compared_in_one():
    # The same spot declared in GCJ-02 by one camera and WGS-84 by another is ~0 m apart, not ~500 m.
    from bridge.location.coordinates import convert

    stage = MergeStage(MergeConfig(radius_m=20, window_s=300))
    a = camera("a", 0)
    lon, lat = convert(a.location.lon, a.location.lat, "wgs84", "gcj02")
    b = CameraContext(camera_id="b", location=LocationConfig(lon=lon, lat=lat, crs="gcj02"),
                      categories=a.categories, model="yolov8n", config_hash="abc")
    stage.apply(event(a, "opened", "a1", 0))
    assert stage.apply(event(b, "opened", "b1", 5)).incident_id == "a1"


def test_disabled_passes_everything_through():
    stage = MergeStage(MergeConfig(enabled=False))
    e1, e2 = event(camera("a", 0), "opened", "a1", 0), event(camera("b", 1), "opened", "b1", 1)
    assert [stage.apply(e1), stage.apply(e2)] == [e1, e2]


def test_merged_events_validate_against_the_published_schema():
    from tests.test_event_schema import validator

    stage = MergeStage(MergeConfig())
    v = validator()
    for e in (event(camera("a", 0), "opened", "a1", 0), event(camera("b", 5), "opened", "b1", 3)):
        v.validate(stage.apply(e).model_dump(mode="json"))


def test_a_source_incident_stays_with_its_merged_incident_when_its_position_leaves_the_grid():
    stage = MergeStage(MergeConfig(radius_m=50, window_s=300))
    a, b = camera("a", 0), camera("b", 10)
    stage.apply(event(a, "opened", "a1", 0))
    stage.apply(event(b, "opened", "b1", 5))
    far_b = camera("b", 5000)  # its object's position now lies outside every grid (or in another)
    moved = event(far_b, "cleared", "b1", 20)
    got = stage.apply(moved)
    assert (got.incident_id, got.status) == ("a1", "updated")  # a1 still open: b's clear is an update
    assert [(s.camera_id, s.active) for s in got.sources] == [("a", True), ("b", False)]
    assert stage.apply(event(a, "cleared", "a1", 30)).status == "cleared" and stage.merger.by_grid == {}
