"""The HTTP API on a real outbox: health, event queries and filters, cameras, evidence."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import httpx
import pytest

from bridge.http.app import ApiState, CameraView, create_app
from bridge.store.audit import ConsoleDb
from bridge.http.auth import Sessions, TokenStore, new_token
from bridge.events.model import CategoryRef, DetectorRef, Event, Evidence, GridRef, Location, SourceRef
from bridge.events.evidence_store import LocalEvidenceStore
from bridge.http.hub import Hub
from bridge.store.outbox import EventStore
from bridge.http.security import AuthContext
from ingest.redact import redact_url

T0 = datetime(2026, 11, 22, 8, 0, tzinfo=timezone(timedelta(hours=8)))


def event(i: int, status="opened", category="market.road-occupation", grid="990001001002002", camera="c1") -> Event:
    return Event(
        event_id=f"e{i}", incident_id=f"i{i // 2}", status=status,
        category=CategoryRef(code=category, name="x"), occurred_at=T0 + timedelta(seconds=i),
        source=SourceRef(kind="video", camera_id=camera, zone="z"),
        location=Location(lon=117.005, lat=36.655, crs="wgs84"),
        grid=GridRef(code=grid, name="g", street="s", community="c") if grid else None,
        grid_reason=None if grid else "outside", confidence=0.9, evidence=Evidence(),
        detector=DetectorRef(model="yolov8n", rule="r", config_hash="abc"),
    )


@pytest.fixture
async def client(tmp_path):
    store = EventStore(tmp_path / "outbox.sqlite3")
    evidence = LocalEvidenceStore(tmp_path / "evidence")
    url = "rtsp://admin:hunter2@127.0.0.1:8554/cam"
    cams = [CameraView(id="c1", name="Cam", url=redact_url(url), state="online", since=0, last_frame_at=None,
                       last_error=None, reconnects=0, frames_decoded=0, frames_sampled=0, frames_dropped=0,
                       frames_analysed=0)]
    token, record = new_token("duty officer", "viewer")
    auth = AuthContext(TokenStore([record]), Sessions(600), ConsoleDb(tmp_path / "console.sqlite3"))
    app = create_app(ApiState(store, Hub(), evidence, lambda: cams, lambda: True, auth=auth))
    for i, (st, cat, grid) in enumerate([
        ("opened", "market.road-occupation", "990001001002002"),
        ("cleared", "market.road-occupation", "990001001002002"),
        ("opened", "public-order.crowd-gathering", "990001002001001"),
        ("opened", "market.road-occupation", None),
    ]):
        await store.append(event(i, st, cat, grid))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test",
                                 headers={"Authorization": f"Bearer {token}"}) as c:
        c.evidence = evidence
        yield c
    store.close()


async def test_health_and_readiness(client):
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = (await client.get("/readyz")).json()
    assert ready["ready"] is True and ready["outbox_backlog"] == 4


async def test_events_newest_first_with_filters(client):
    ids = [e["event_id"] for e in (await client.get("/events")).json()["events"]]
    assert ids == ["e3", "e2", "e1", "e0"]
    assert [e["event_id"] for e in (await client.get("/events", params={"status": "cleared"})).json()["events"]] == ["e1"]
    got = (await client.get("/events", params={"category": "public-order.crowd-gathering"})).json()["events"]
    assert [e["event_id"] for e in got] == ["e2"]
    got = (await client.get("/events", params={"grid": "990001001"})).json()["events"]  # a street: prefix
    assert [e["event_id"] for e in got] == ["e1", "e0"]


async def test_events_pagination_cursor(client):
    page = (await client.get("/events", params={"limit": 2})).json()
    assert [e["event_id"] for e in page["events"]] == ["e3", "e2"]
    nxt = (await client.get("/events", params={"limit": 2, "before": page["next_before"]})).json()
    assert [e["event_id"] for e in nxt["events"]] == ["e1", "e0"]


async def test_bad_query_is_a_clear_422(client):
    res = await client.get("/events", params={"status": "exploded"})
    assert res.status_code == 422
    assert res.json()["detail"][0]["loc"] == ["query", "status"]
    res = await client.get("/events", params={"limit": 0})
    assert res.status_code == 422 and res.json()["detail"][0]["loc"] == ["query", "limit"]


async def test_cameras_never_show_credentials(client):
    body = (await client.get("/cameras")).text
    assert "hunter2" not in body and "admin:***@" in body


async def test_evidence_served_and_names_cannot_escape(client):
    url = client.evidence.put(b"\xff\xd8\xff\xd9", "jpg").url
    res = await client.get(url)
    assert res.status_code == 200 and res.headers["content-type"] == "image/jpeg"
    for bad in ["/evidence/..%2Foutbox.sqlite3", "/evidence/nothere.jpg", "/evidence/" + "0" * 32 + ".jpg"]:
        assert (await client.get(bad)).status_code == 404


async def test_index_page_and_metrics(client):
    page = await client.get("/")
    assert page.status_code == 200 and "EventSource" in page.text and "http" not in page.text.split("<script>")[1].split("fetch(")[0]
    metrics = await client.get("/metrics")
    assert "xueliang_outbox_backlog" in metrics.text
