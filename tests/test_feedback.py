"""Feedback from the platform, the pure parts and the handler on a real outbox: message parsing
with clear errors, the suppression gate, verification events, and the analyser's current
conditions (synthetic tracks) that answer a verify request."""
from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from datetime import datetime, timedelta, timezone

import jsonschema
import numpy as np
import pytest
import yaml

from bridge.bridge_config import FeedbackConfig
from bridge.kafka.dispatch import KafkaConfig
from bridge.events.evidence_store import StoredItem
from bridge.feedback.messages import (FeedbackError, SuppressionGate, VerifyRequest, WorkOrderClosed, feedback_json_schema,
                             key_of, keys_of_stored, parse_feedback)
from bridge.merging.rewrite import MergeConfig, MergeStage
from bridge.store.outbox import EventStore
from bridge.feedback.verify import PendingVerification, verification_event
from detectors.analyzer import CameraAnalyzer
from detectors.detector_config import TrackerConfig, ZoneConfig
from detectors.detections import Detections
from tests.helpers import REPO
from tests.test_event_schema import validator
from tests.test_merge_stage import camera, event
from xueliang.config import ServiceConfig
from bridge.feedback.handler import FeedbackHandler

SCHEMA = REPO / "docs" / "feedback.schema.json"


def test_feedback_schema_file_is_current_and_asyncapi_describes_the_topic():
    assert json.loads(SCHEMA.read_text(encoding="utf-8")) == feedback_json_schema(), \
        "docs/feedback.schema.json is stale: run `make reference`"
    doc = yaml.safe_load((REPO / "docs" / "asyncapi.yaml").read_text(encoding="utf-8"))
    assert doc["channels"]["feedback"]["address"] == KafkaConfig().feedback_topic
    assert doc["operations"]["receiveFeedback"]["action"] == "receive"
    msg = doc["components"]["messages"]["feedback"]
    assert (REPO / "docs" / msg["payload"]["schema"]["$ref"]).resolve() == SCHEMA.resolve()
    v = jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text(encoding="utf-8")))
    for ex in msg["examples"]:  # the documented examples are valid, and the service parses them
        v.validate(ex["payload"])
        assert parse_feedback(json.dumps(ex["payload"]).encode()).type == ex["payload"]["type"]


def test_parse_valid_messages_ignoring_extra_fields():
    m = parse_feedback(b'{"type": "work_order_closed", "incident_id": "i1", "work_order": "WO-7"}')
    assert m == WorkOrderClosed(type="work_order_closed", incident_id="i1")
    m = parse_feedback('{"type":"verify_request","incident_id":"i1","request_id":"r1"}'.encode())
    assert m == VerifyRequest(type="verify_request", incident_id="i1", request_id="r1")


@pytest.mark.parametrize("raw, reason, words", [
    (b"\xff\xfe", "invalid_json", ["not JSON"]),
    (b"{", "invalid_json", ["not JSON"]),
    (None, "invalid_json", ["null"]),
    (b'{"type": "close", "incident_id": "i"}', "invalid_message", ["close", "work_order_closed"]),
    (b'{"type": "verify_request", "incident_id": "i"}', "invalid_message", ["request_id", "Field required"]),
    (b'{"type": "work_order_closed", "incident_id": "i", "suppress_s": -5}', "invalid_message", ["suppress_s"]),
    (b'[1, 2]', "invalid_message", ["not a feedback message"]),
])
def test_bad_messages_say_what_is_wrong(raw, reason, words):
    with pytest.raises(FeedbackError) as err:
        parse_feedback(raw)
    assert err.value.reason == reason
    assert all(w in str(err.value) for w in words), str(err.value)


def test_gate_suppresses_new_incidents_of_the_key_until_the_window_ends_whole_incidents_only():
    a = camera("a", 0)
    gate = SuppressionGate()
    gate.add([key_of(event(a, "opened", "old", 0))], until=1000)
    # an incident already open keeps being reported: only new ones are suppressed
    assert gate.check(event(a, "updated", "old", 10), now=500) is None
    opened, updated, cleared = (event(a, s, "new", t) for s, t in (("opened", 20), ("updated", 30), ("cleared", 40)))
    assert "work order closed" in gate.check(opened, now=500)
    assert gate.check(updated, now=1200) is not None  # its follow-ups too, even after the window
    assert gate.check(cleared, now=1300) is not None
    assert gate.check(event(a, "opened", "later", 50), now=1000) is None  # window over
    assert gate.until == {}  # pruned
    # other zone/rule/category/camera: not suppressed
    gate.add([key_of(opened)], until=2000)
    assert gate.check(event(camera("b", 0), "opened", "b1", 0), now=1500) is None
    assert gate.check(event(a, "opened", "g1", 0, rule="g"), now=1500) is None


def test_keys_of_a_merged_incident_cover_every_source():
    stage = MergeStage(MergeConfig())
    stage.apply(event(camera("a", 0), "opened", "a1", 0))
    merged = stage.apply(event(camera("b", 5), "opened", "b1", 3))
    keys = keys_of_stored(json.loads(merged.model_dump_json()))
    assert [json.loads(k) for k in keys] == [["camera:a", "z", "r", "market.road-occupation"],
                                             ["camera:b", "z", "r", "market.road-occupation"]]


def test_verification_event_keeps_the_incident_and_validates():
    inc = json.loads(event(camera("a", 0), "opened", "a1", 0).model_dump_json())
    p = PendingVerification("req-1", inc, "a", "z", "r")
    at = datetime(2026, 11, 22, 9, tzinfo=timezone(timedelta(hours=8)))
    snap = {"snapshot": StoredItem("/evidence/" + "a" * 32 + ".jpg", "b" * 64)}
    yes = verification_event(p, at, True, evidence=snap, bbox=(0.1, 0.2, 0.3, 0.4), score=0.7)
    gone = verification_event(p, at, False, evidence=snap)
    unknown = verification_event(p, at, None, reason="camera a gave no analysed frame within 30 s")
    for ev in (yes, gone, unknown):
        validator().validate(json.loads(ev.model_dump_json()))
        assert ev.status == "verified" and ev.incident_id == "a1" and ev.event_id != inc["event_id"]
        assert ev.grid.code == inc["grid"]["code"] and ev.verification.request_id == "req-1"
    assert (yes.verification.still_present, gone.verification.still_present) == (True, False)
    assert yes.evidence.snapshot == snap["snapshot"].url and yes.evidence.bbox == [0.1, 0.2, 0.3, 0.4]
    assert gone.evidence.bbox is None and gone.confidence == inc["confidence"]
    assert unknown.verification.reason.startswith("camera a") and unknown.evidence.snapshot is None


def test_current_conditions_answer_still_there_or_gone_with_synthetic_tracks():
    cfg = ServiceConfig.model_validate({
        "cameras": [{"id": "c", "url": "x.mp4", "location": {"lon": 117.0, "lat": 36.6, "crs": "wgs84"},
                     "zones": [{"name": "table", "polygon": [[0.4, 0.5], [0.8, 0.5], [0.8, 1.0], [0.4, 1.0]]}],
                     "rules": [{"id": "stay", "type": "dwell", "category": "market.road-occupation",
                                "zone": "table", "classes": ["person"], "min_dwell_s": 3}]}],
        "grid": {"path": "g.geojson"}})
    cam = cfg.cameras[0]
    an = CameraAnalyzer("c", [ZoneConfig.model_validate(z.model_dump()) for z in cam.zones], cam.rules,
                        TrackerConfig(), 4)
    names = {0: "person"}

    def frame(boxes):
        xyxy = np.array(boxes, np.float32).reshape(-1, 4)
        n = len(xyxy)
        return Detections(xyxy, np.full(n, 0.9, np.float32), np.zeros(n, np.float32), names, (100, 100))

    t = 0.0
    for _ in range(20):  # someone stands at the table for 5 s
        an.process(frame([[50, 40, 70, 90]]), t)
        t += 0.25
    assert [c.zone for c in an.conditions["stay"]] == ["table"]  # still there
    for _ in range(12):  # gone for 3 s
        an.process(frame([]), t)
        t += 0.25
    assert an.conditions["stay"] == []
    an.process(frame([[50, 40, 70, 90]]), t)  # a newcomer has not stayed long enough yet
    assert an.conditions["stay"] == []


async def test_handler_suppresses_from_the_message_time_and_queues_verification(tmp_path):
    store = EventStore(tmp_path / "o.db")
    published = []

    async def publish(ev):
        published.append(ev)

    try:
        a = camera("a", 0)
        inc = event(a, "opened", "a1", 0)
        await store.append(inc)
        gate = SuppressionGate()
        h = FeedbackHandler(FeedbackConfig(verify_timeout_s=0.2), store, gate, {"a"}, publish)
        now = time.time()
        await h(WorkOrderClosed(type="work_order_closed", incident_id="a1", suppress_s=60), now - 10)
        assert gate.until == {key_of(inc): pytest.approx(now + 50)}
        assert await store.suppressions(now) == gate.until  # persisted: a restart keeps it
        with pytest.raises(FeedbackError, match="no incident 'nope'") as err:
            await h(VerifyRequest(type="verify_request", incident_id="nope", request_id="r0"), now)
        assert err.value.reason == "unknown_incident"
        with pytest.raises(FeedbackError, match="old") as err:
            await h(VerifyRequest(type="verify_request", incident_id="a1", request_id="r0"), now - 3600)
        await h(VerifyRequest(type="verify_request", incident_id="a1", request_id="r1"), now)
        await h(VerifyRequest(type="verify_request", incident_id="a1", request_id="r2"), now)
        taken = h.take("a")
        assert [p.request_id for p in taken] == ["r1", "r2"] and (taken[0].zone, taken[0].rule) == ("z", "r")
        await h.answered(taken[0], verification_event(taken[0], datetime.now().astimezone(), True))
        await asyncio.sleep(0.4)  # r2 was taken but never answered (a failed frame): the timeout answers
        assert [(e.verification.request_id, e.verification.still_present) for e in published] == \
            [("r1", True), ("r2", None)]
        assert "no analysed frame" in published[1].verification.reason
        h.close()
    finally:
        store.close()


async def test_suppressed_rows_are_kept_and_queryable_but_never_pending(tmp_path):
    store = EventStore(tmp_path / "o.db")
    try:
        a = camera("a", 0)
        await store.append(event(a, "opened", "a1", 0))
        seq = await store.append(event(a, "opened", "a2", 5), suppressed="work order closed")
        assert [r.seq for r in await store.pending()] == [seq - 1] and await store.backlog() == 1
        rows = await store.query()
        assert [(r.event["incident_id"], r.suppressed) for r in rows] == [("a2", "work order closed"), ("a1", None)]
        assert (await store.latest_of_incident("a2")).suppressed == "work order closed"
    finally:
        store.close()


async def test_a_layout_1_outbox_is_upgraded_in_place_keeping_its_rows(tmp_path):
    path = tmp_path / "old.db"
    store = EventStore(path)
    await store.append(event(camera("a", 0), "opened", "a1", 0))
    store.close()
    db = sqlite3.connect(path)  # make it what layout 1 wrote: no `suppressed`, no `suppressions`
    db.executescript("DROP INDEX events_pending; DROP TABLE suppressions; ALTER TABLE events DROP COLUMN suppressed;"
                     "CREATE INDEX events_pending ON events(seq) WHERE delivered_at IS NULL; PRAGMA user_version=1;")
    db.close()
    store = EventStore(path)
    try:
        assert await store.backlog() == 1 and len(await store.pending()) == 1
        await store.append(event(camera("a", 0), "opened", "a2", 5), suppressed="x")
        assert await store.backlog() == 1
    finally:
        store.close()
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == 2
