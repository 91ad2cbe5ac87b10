"""The map's API on a real outbox and a real grid layer: the layer as one cached, gzipped GeoJSON
in the map's coordinate system, cameras and open incidents converted into it, lights, a grid's list."""
from __future__ import annotations

import gzip
import json
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from bridge.http.app import ApiState, CameraView, create_app
from bridge.store.audit import ConsoleDb
from bridge.http.auth import Sessions, TokenStore, new_token
from bridge.events.catalogue import Catalogue, CategoryEntry
from bridge.bridge_config import MapConfig
from bridge.http.console.lights import light_of
from bridge.events.model import CategoryRef, DetectorRef, Event, Evidence, GridRef, Location, SourceRef, Verification
from bridge.events.evidence_store import LocalEvidenceStore
from bridge.location.coordinates import convert
from bridge.location.grid import CodeScheme, GridIndex
from bridge.http.hub import Hub
from bridge.store.outbox import EventStore
from bridge.http.security import AuthContext
from tests.grid_lattice import grid_code, write_lattice

N = 20  # a 20×20 lattice: 400 grids, cells of 0.001°
LON0, LAT0 = 116.98, 36.63


def cell_centre(i: int, j: int) -> tuple[float, float]:
    return LON0 + (i + 0.5) * 0.001, LAT0 + (j + 0.5) * 0.001


def event(n: int, incident: str, status: str, at: datetime, i: int, j: int, *, category="market.road-occupation",
          verification: Verification | None = None) -> Event:
    lon, lat = cell_centre(i, j)  # given in GCJ-02, the layer's own system
    return Event(event_id=f"e{n}", incident_id=incident, status=status, category=CategoryRef(code=category, name=category),
                 occurred_at=at, source=SourceRef(kind="video", camera_id="c1"),
                 location=Location(lon=lon, lat=lat, crs="gcj02"), grid=GridRef(code=grid_code(N, i, j), name="g"),
                 confidence=0.9, evidence=Evidence(snapshot=f"/evidence/{n}.jpg"),
                 detector=DetectorRef(model="yolov8n", rule="r", config_hash="abc"), verification=verification)


@pytest.fixture
async def world(tmp_path):
    layer = write_lattice(tmp_path / "lattice.geojson", n=N, lon0=LON0, lat0=LAT0)
    index = GridIndex.load(layer, CodeScheme(), "gcj02")
    store = EventStore(tmp_path / "outbox.sqlite3")
    cams = [CameraView(id="c1", name="Cam", url="rtsp://127.0.0.1/x", state="offline", since=0, last_frame_at=None,
                       last_error="connection refused", reconnects=3, frames_decoded=0, frames_sampled=0,
                       frames_dropped=0, frames_analysed=0)]
    base = Catalogue.load()
    limited = base.by_code["safety.fire-smoke"].model_copy(update={"time_limit_s": 3600.0})
    catalogue = Catalogue([e for e in base.by_code.values() if e.code != limited.code] + [limited], base.source)
    token, record = new_token("duty officer", "viewer")
    auth = AuthContext(TokenStore([record]), Sessions(600), ConsoleDb(tmp_path / "console.sqlite3"))
    app = create_app(ApiState(store, Hub(), LocalEvidenceStore(tmp_path / "evidence"), lambda: cams, lambda: True,
                              auth=auth, grid=index, map_config=MapConfig(crs="wgs84"), catalogue=catalogue,
                              locations=lambda: {"c1": (117.0, 36.64, "bd09")}))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test",
                                 headers={"Authorization": f"Bearer {token}"}) as c:
        c.store, c.index = store, index
        yield c
    store.close()


async def test_grid_layer_is_one_gzipped_geojson_in_the_maps_crs_with_names(world):
    r = await world.get("/map/grids.geojson", headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200 and r.headers["content-encoding"] == "gzip"
    assert r.headers["content-type"] == "application/geo+json"
    doc = r.json()  # httpx decodes the gzip
    assert len(r.content) and len(gzip.compress(r.content)) < len(json.dumps(doc))
    assert doc["xueliang"] == {"layer": "lattice.geojson", "crs": "wgs84", "grids": N * N,
                               "levels": ["district", "street", "community", "grid"]}
    feats = {f["properties"]["code"]: f for f in doc["features"]}
    assert len(feats) == 1 + 10 + 100 + N * N
    code = grid_code(N, 3, 7)
    f = feats[code]
    assert f["properties"]["street"] == "第2街道" and f["properties"]["community"] == "2街4社区"
    # The layer is GCJ-02; the map draws WGS-84: every vertex converted (to 1e-6°).
    x0, y0 = LON0 + 3 * 0.001, LAT0 + 7 * 0.001
    want = convert(x0, y0, "gcj02", "wgs84")
    assert f["geometry"]["coordinates"][0][0] == pytest.approx(list(want), abs=2e-6)
    assert abs(want[0] - x0) > 0.003  # the conversion is not a no-op here (~500 m in Jinan)
    lx, ly = f["properties"]["lx"], f["properties"]["ly"]
    assert convert(lx, ly, "wgs84", "gcj02") == pytest.approx(cell_centre(3, 7), abs=2e-6)
    # Cached: the same ETag, and a revalidation costs nothing.
    again = await world.get("/map/grids.geojson", headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    plain = await world.get("/map/grids.geojson", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and plain.json() == doc


async def test_cameras_and_incidents_come_converted_with_their_lights(world):
    now = datetime.now(timezone.utc)
    events = [
        event(1, "i-open", "opened", now - timedelta(seconds=30), 3, 7),
        event(2, "i-open", "updated", now - timedelta(seconds=10), 3, 7),
        event(3, "i-gone", "opened", now - timedelta(seconds=50), 3, 7),
        event(4, "i-gone", "cleared", now - timedelta(seconds=5), 3, 7),
        event(5, "i-fire", "opened", now - timedelta(seconds=2000), 3, 8, category="safety.fire-smoke"),
        event(6, "i-other", "opened", now - timedelta(seconds=5), 15, 15),
        event(7, "i-other", "verified", now - timedelta(seconds=1), 15, 15,
              verification=Verification(request_id="r1", still_present=True)),
    ]
    for e in events:
        await world.store.append(e)
    cams = (await world.get("/map/cameras")).json()
    assert cams[0]["state"] == "offline" and cams[0]["last_error"] == "connection refused"
    assert cams[0]["point"] == pytest.approx(list(convert(117.0, 36.64, "bd09", "wgs84")), abs=1e-6)

    every = (await world.get("/map/incidents")).json()
    by_id = {i["incident_id"]: i for i in every["incidents"]}
    assert set(by_id) == {"i-open", "i-fire", "i-other"}  # cleared incidents are not on the map
    assert [i["incident_id"] for i in every["incidents"]] == ["i-other", "i-fire", "i-open"]  # newest first
    opened = by_id["i-open"]
    assert opened["status"] == "updated" and opened["event_id"] == "e2" and opened["light"] == "yellow"
    assert 25 <= opened["age_s"] < 600  # from the opening, not the latest update
    assert opened["point"] == pytest.approx(list(convert(*cell_centre(3, 7), "gcj02", "wgs84")), abs=1e-6)
    assert by_id["i-fire"]["light"] == "yellow" and "3600 s limit" in by_id["i-fire"]["light_reason"]
    assert by_id["i-other"]["light"] == "red" and by_id["i-other"]["status"] == "opened"

    # A click on a grid: its open incidents only, and what the grid is.
    one = (await world.get("/map/incidents", params={"grid": grid_code(N, 3, 7)})).json()
    assert [i["incident_id"] for i in one["incidents"]] == ["i-open"]
    assert one["area"] == {"code": grid_code(N, 3, 7), "name": "2街4社区4网格", "level": "grid",
                           "street": "第2街道", "community": "2街4社区"}
    street = (await world.get("/map/incidents", params={"grid": grid_code(N, 3, 7)[:9]})).json()
    assert {i["incident_id"] for i in street["incidents"]} == {"i-open", "i-fire"}
    assert street["area"]["level"] == "street" and street["area"]["street"] is None
    empty = (await world.get("/map/incidents", params={"grid": grid_code(N, 0, 0)})).json()
    assert empty["incidents"] == [] and not empty["truncated"]
    capped = (await world.get("/map/incidents", params={"limit": 2})).json()
    assert len(capped["incidents"]) == 2 and capped["truncated"]
    missing = await world.get("/map/incidents", params={"grid": "990001999"})
    assert missing.status_code == 404 and "990001999" in missing.json()["detail"]


async def test_map_settings_and_library(world):
    s = (await world.get("/map/config")).json()
    assert s == {"crs": "wgs84", "tile_url": "", "tile_attribution": "", "tile_max_zoom": 18,
                 "library": s["library"], "grids": True}
    if s["library"]:  # installed by `make setup`; the page says so when it is not
        lib = await world.get("/vendor/maplibre-gl/maplibre-gl.js")
        assert lib.status_code == 200 and "javascript" in lib.headers["content-type"]


def test_lights_follow_the_time_limit_else_the_status():
    assert light_of("opened", 10, 100)[0] == "green"
    assert light_of("updated", 50, 100)[0] == "yellow"
    assert light_of("opened", 100, 100)[0] == "red"
    assert light_of("opened", 10**6, None)[0] == "green"
    assert light_of("updated", 1, None)[0] == "yellow"
    assert light_of("verified", 1, None, still_present=True)[0] == "red"
    assert light_of("verified", 1, None, still_present=None)[0] == "yellow"
    with pytest.raises(ValueError, match="cleared"):
        light_of("cleared", 1, None)


def test_catalogue_time_limit_must_be_positive():
    with pytest.raises(ValueError, match="time_limit_s"):
        CategoryEntry.model_validate({"code": "a.b", "name": "x", "major": "m", "routing": {"unit": "u"},
                                      "time_limit_s": 0})


def test_map_crs_is_one_a_tile_server_can_draw():
    with pytest.raises(ValueError, match="crs"):
        MapConfig(crs="bd09")
    assert MapConfig(crs="gcj02", tile_url="http://127.0.0.1:9/{z}/{x}/{y}.png").crs == "gcj02"
    with pytest.raises(ValueError, match="extra"):
        MapConfig(tiles="x")
