"""Incidents, not event rows, on a real outbox and console database: one row per incident with its
state, age and best evidence; its events as the lifecycle; clocks from work-order states (time set
by the test through `at`); overdue filter; on-time rates per street and category."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import httpx
import pytest

from bridge.http.app import ApiState, create_app
from bridge.store.audit import ConsoleDb
from bridge.http.auth import Sessions, TokenStore, new_token
from bridge.events.catalogue import Catalogue, ClockLimits
from bridge.bridge_config import ClocksConfig
from bridge.http.console.clocks import clock
from bridge.events.model import (CategoryRef, DetectorRef, Event, Evidence, GridRef, Location, PlateRef, SourceRef,
                          Verification)
from bridge.events.evidence_store import LocalEvidenceStore
from bridge.http.hub import Hub
from bridge.store.outbox import EventStore
from bridge.http.security import AuthContext
from bridge.feedback.work_orders import WorkOrderLog

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=timezone.utc)
LIMITS = ClockLimits(accept_s=600, handle_s=3600, verify_s=1200)


def event(n: int, incident: str, status: str, dt_s: float, conf: float = 0.5, *, street="泉南街道",
          category="market.road-occupation", plate: str | None = None) -> Event:
    return Event(event_id=f"e{n}", incident_id=incident, status=status,
                 category=CategoryRef(code=category, name="占道经营"), occurred_at=T0 + timedelta(seconds=dt_s),
                 source=SourceRef(kind="video", camera_id="c1", zone="z"),
                 location=Location(lon=117.0, lat=36.65, crs="wgs84"),
                 grid=GridRef(code="990001001002002", name="g", street=street), confidence=conf,
                 evidence=Evidence(snapshot=f"/evidence/{n:032x}.jpg", crop=f"/evidence/{n + 100:032x}.jpg",
                                   plate=f"/evidence/{n + 200:032x}.jpg" if plate else None),
                 detector=DetectorRef(model="yolov8n", rule="r", config_hash="abc"),
                 plate=PlateRef(text=plate, colour="blue", confidence=0.9, engine="x") if plate else None)


@pytest.fixture
async def world(tmp_path):
    store = EventStore(tmp_path / "outbox.sqlite3")
    wo = WorkOrderLog(tmp_path / "console.sqlite3")
    tokens, records = {}, []
    for role in ("viewer", "operator"):
        tokens[role], rec = new_token(role, role)
        records.append(rec)
    auth = AuthContext(TokenStore(records), Sessions(600), ConsoleDb(tmp_path / "console.sqlite3"))
    clocks = ClocksConfig(limits={"market.road-occupation": LIMITS})
    app = create_app(ApiState(store, Hub(), LocalEvidenceStore(tmp_path / "evidence"), lambda: [], lambda: True,
                              auth=auth, catalogue=Catalogue.load(), clocks=clocks, work_orders=wo))
    transport = httpx.ASGITransport(app=app)
    clients = {role: httpx.AsyncClient(transport=transport, base_url="http://t",
                                       headers={"Authorization": f"Bearer {tok}"}) for role, tok in tokens.items()}
    yield store, wo, clients
    for c in clients.values():
        await c.aclose()
    store.close()


async def test_one_row_per_incident_with_state_best_evidence_and_lifecycle(world):
    store, wo, api = world
    await store.append_many([event(1, "a", "opened", 0, 0.5), event(2, "a", "updated", 30, 0.9, plate="京A12345"),
                             event(3, "a", "updated", 60, 0.7), event(4, "a", "cleared", 90, 0.6),
                             event(5, "b", "opened", 100, 0.8, street="舜华街道", category="safety.fire-smoke")])
    page = (await api["operator"].get("/incidents")).json()
    assert [r["incident_id"] for r in page["incidents"]] == ["b", "a"]  # five events, two rows
    a = page["incidents"][1]
    assert a["state"] == "cleared" and a["events"] == 4 and a["best_event_id"] == "e2"
    assert a["thumbnail"] == f"/evidence/{102:032x}.jpg"  # the crop of the most confident event
    assert a["event"]["event_id"] == "e4"
    assert [r["incident_id"] for r in (await api["operator"].get("/incidents", params={"state": "open"})).json()["incidents"]] == ["b"]
    assert (await api["operator"].get("/incidents", params={"grid": "990001001", "category": "safety.fire-smoke"})
            ).json()["incidents"][0]["incident_id"] == "b"
    two = (await api["operator"].get("/incidents", params={"limit": 1})).json()
    assert two["next_before"] == 5
    rest = (await api["operator"].get("/incidents", params={"limit": 1, "before": 5})).json()
    assert [r["incident_id"] for r in rest["incidents"]] == ["a"]
    d = (await api["operator"].get("/incidents/a")).json()
    assert [e["status"] for e in d["lifecycle"]] == ["opened", "updated", "updated", "cleared"]
    assert d["lifecycle"][1]["plate"]["text"] == "京A12345"
    v = (await api["viewer"].get("/incidents/a")).json()  # viewers never see plate text or crops
    assert "text" not in v["lifecycle"][1]["plate"] and "plate" not in v["lifecycle"][1]["evidence"]
    assert (await api["viewer"].get("/incidents/nope")).status_code == 404
    found = event(6, "b", "verified", 200).model_copy(update={"verification": Verification(
        request_id="r1", still_present=True)})
    await store.append(found)  # a verify request found it still there: red, as on the map (one light function)
    b = (await api["viewer"].get("/incidents", params={"incident": "b"})).json()["incidents"][0]
    on_map = (await api["viewer"].get("/map/incidents")).json()["incidents"]
    assert b["state"] == "opened" and b["light"] == "red" and [i["light"] for i in on_map] == ["red"]


async def test_clock_turns_green_yellow_red_and_rates_count_late_steps(world):
    store, wo, api = world
    await store.append_many([event(1, "a", "opened", 0), event(2, "b", "opened", 0, street="舜华街道")])
    t0 = T0.timestamp()

    async def row(incident, at):
        return (await api["viewer"].get("/incidents", params={"incident": incident, "at": at})).json()["incidents"][0]

    assert (await row("a", t0 + 100))["light"] == "green"  # acceptance: 100 of 600 s
    assert (await row("a", t0 + 400))["light"] == "yellow"
    late = await row("a", t0 + 700)
    assert late["light"] == "red" and late["overdue"] and late["step"] == "acceptance"
    wo.record("a", "accepted", t0 + 200, "WO-1")
    wo.record("a", "dispatched", t0 + 300)
    r = await row("a", t0 + 700)
    assert (r["step"], r["light"], r["work_order"], r["due_at"]) == ("handling", "green", "dispatched", t0 + 3800)
    assert (await row("a", t0 + 2300))["light"] == "yellow"
    assert (await row("a", t0 + 3900))["light"] == "red"
    over = (await api["viewer"].get("/incidents", params={"overdue": "true", "at": t0 + 3900})).json()["incidents"]
    assert {r["incident_id"] for r in over} == {"a", "b"}
    wo.record("a", "handled", t0 + 3000)
    wo.record("a", "verified", t0 + 3500)
    done = await row("a", t0 + 9999)
    assert (done["step"], done["light"], done["verdict"]) == ("done", "green", "on_time")
    rates = (await api["viewer"].get("/incidents/rates", params={"at": t0 + 9999})).json()
    streets = {s["key"]: s for s in rates["streets"]}
    assert streets["泉南街道"]["on_time"] == 1 and streets["舜华街道"]["late"] == 1
    assert {c["key"]: c["rate"] for c in rates["categories"]} == {"market.road-occupation": 0.5}


def test_clock_steps_returns_and_fallbacks():
    states = [("accepted", 100.0), ("handled", 200.0), ("returned", 300.0)]
    c = clock(opened_at=0, now=400, limits=LIMITS, states=states)
    assert (c.step, c.due_at, c.light) == ("handling", 300 + 3600, "green")  # rework: handling again from the return
    c = clock(opened_at=0, now=5000, limits=LIMITS, states=[("accepted", 700.0), ("closed", 800.0)])
    assert (c.step, c.light, c.verdict) == ("done", "red", "late")  # accepted 100 s past its limit
    c = clock(opened_at=0, now=10, limits=LIMITS, states=[], false_alarm=True)
    assert c.step is None and not c.overdue
    assert clock(opened_at=0, now=10, limits=None, states=[], status="updated").light == "yellow"  # by status
    assert clock(opened_at=0, now=80, limits=None, states=[], legacy_limit_s=100).light == "yellow"


async def test_evidence_bundle_is_one_zip_with_a_manifest_and_no_plate_for_viewers(world, tmp_path):
    import hashlib
    import io
    import json
    import zipfile

    from bridge.events.evidence_store import LocalEvidenceStore

    store, wo, api = world
    ev_store = LocalEvidenceStore(tmp_path / "evidence")  # the app's evidence directory
    items = {k: ev_store.put(f"{k} bytes".encode(), ext) for k, ext in
             [("before", "jpg"), ("snapshot", "jpg"), ("crop", "jpg"), ("clip", "mp4"), ("plate", "jpg")]}
    base = event(1, "d", "opened", 0, plate="京A12345")
    ev = base.model_copy(update={"evidence": base.evidence.model_copy(update={
        **{k: v.url for k, v in items.items()}, "sha256": {k: v.sha256 for k, v in items.items()} | {"crop": "0" * 64}})})
    await store.append(ev)
    res = await api["operator"].get("/events/e1/bundle")
    assert res.status_code == 200 and res.headers["content-type"] == "application/zip"
    z = zipfile.ZipFile(io.BytesIO(res.content))
    assert sorted(z.namelist()) == ["before.jpg", "clip.mp4", "crop.jpg", "event.json", "manifest.json", "plate.jpg",
                                    "snapshot.jpg"]
    manifest = json.loads(z.read("manifest.json"))
    files = {f["field"]: f for f in manifest["files"]}
    assert files["clip"]["sha256"] == hashlib.sha256(b"clip bytes").hexdigest() and files["clip"]["match"]
    assert not files["crop"]["match"]  # a recorded sha256 that does not match the file is shown, not hidden
    assert manifest["detector"]["config_hash"] == "abc" and manifest["made_by"] == "operator"
    assert json.loads(z.read("event.json"))["plate"]["text"] == "京A12345"
    zv = zipfile.ZipFile(io.BytesIO((await api["viewer"].get("/events/e1/bundle")).content))
    assert "plate.jpg" not in zv.namelist() and "text" not in json.loads(zv.read("event.json"))["plate"]
    assert (await api["viewer"].get("/events/nope/bundle")).status_code == 404


async def test_review_is_an_event_audited_and_shown_and_viewers_may_not(world, tmp_path):
    store, wo, api = world
    await store.append_many([event(1, "a", "opened", 0), event(2, "a", "updated", 30)])
    bad = await api["operator"].post("/incidents/a/review", json={"decision": "false_alarm"})
    assert bad.status_code == 422 and "reason" in bad.text
    assert (await api["operator"].post("/incidents/a/review", json={"decision": "false_alarm", "reason": "other"})).status_code == 422
    assert (await api["viewer"].post("/incidents/a/review", json={"decision": "confirmed"})).status_code == 403
    assert (await api["operator"].post("/incidents/zz/review", json={"decision": "confirmed"})).status_code == 404
    res = await api["operator"].post("/incidents/a/review", json={"decision": "false_alarm", "reason": "shadow",
                                                                  "note": "tree", "event_id": "e1"})
    assert res.status_code == 201, res.text
    reviewed = (await api["viewer"].get("/events", params={"status": "reviewed"})).json()["events"]
    assert len(reviewed) == 1 and reviewed[0]["review"] == {"decision": "false_alarm", "reason": "shadow", "note": "tree",
                                                           "reviewer": "operator", "reviewed_event_id": "e1"}
    assert reviewed[0]["incident_id"] == "a" and reviewed[0]["event_id"] == res.json()["event_id"]
    row = (await api["viewer"].get("/incidents")).json()["incidents"][0]
    assert row["state"] == "updated" and row["review"]["decision"] == "false_alarm" and row["event"]["event_id"] == "e2"
    assert (await api["viewer"].get("/incidents", params={"review": "confirmed"})).json()["incidents"] == []
    assert (await store.latest_of_incident("a")).event["event_id"] == "e2"  # a review is not a lifecycle step
    await store.append(event(9, "s", "opened", 0), suppressed="work order closed")
    assert (await api["operator"].post("/incidents/s/review", json={"decision": "confirmed"})).status_code == 201
    held = (await api["viewer"].get("/events", params={"status": "reviewed", "limit": 1})).json()["events"][0]
    assert held["incident_id"] == "s" and held["suppressed"] == "work order closed"  # kept, never sent
    audit = ConsoleDb(tmp_path / "console.sqlite3").entries()
    assert audit[1]["action"] == "incident.review" and audit[1]["detail"]["reason"] == "shadow"


async def test_pages_walk_every_incident_once_newest_first(world):
    store, wo, api = world
    evs, n = [], 0
    for i in range(130):  # more than one batch of the backwards walk per page
        for st in ("opened", "updated") if i % 3 else ("opened", "updated", "cleared"):
            n += 1
            evs.append(event(n, f"i{i:03d}", st, n))
    await store.append_many(evs)
    seen, before = [], None
    while True:
        page = (await api["viewer"].get("/incidents", params={"limit": 40, **({"before": before} if before else {})})).json()
        seen += [r["incident_id"] for r in page["incidents"]]
        before = page["next_before"]
        if before is None:
            break
    assert seen == [f"i{i:03d}" for i in reversed(range(130))]
    open_ids = [r["incident_id"] for r in (await api["viewer"].get("/incidents", params={"state": "open", "limit": 1000})).json()["incidents"]]
    assert open_ids == [f"i{i:03d}" for i in reversed(range(130)) if i % 3]
