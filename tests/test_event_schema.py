"""docs/event.schema.json is current, real events validate against it, and docs/asyncapi.yaml
describes the Kafka topic with that schema."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import jsonschema
import pytest
import yaml

from bridge.events.evidence_store import StoredItem
from bridge.events.catalogue import Catalogue
from bridge.bridge_config import LocationConfig
from bridge.kafka.dispatch import KafkaConfig
from bridge.events.model import event_json_schema
from bridge.events.builder import CameraContext, EventFactory
from bridge.events.evidence_store import StoredItem
from bridge.location.grid import CodeScheme, GridIndex
from bridge.store.outbox import open_store
from detectors.lifecycle import IncidentChange
from detectors.rules.condition import Condition
from tests.helpers import REPO

SCHEMA_PATH = REPO / "docs" / "event.schema.json"
ASYNCAPI = REPO / "docs" / "asyncapi.yaml"


def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def real_events():
    factory = EventFactory(GridIndex.load(REPO / "configs/grids/demo-district.geojson", CodeScheme()),
                           Catalogue.load())
    ctx = CameraContext(camera_id="table", location=LocationConfig(lon=117.015, lat=36.665, crs="wgs84"),
                        categories={"r": "market.road-occupation"}, model="yolov8n", config_hash="abc")
    outside = CameraContext(camera_id="far", location=LocationConfig(lon=118.0, lat=36.0, crs="gcj02"),
                            categories={"r": "safety.fire-smoke"}, model="yolov8n", config_hash="abc")
    t = datetime(2026, 11, 22, 8, tzinfo=timezone(timedelta(hours=8)))
    out = []
    for status, c in (("opened", ctx), ("cleared", ctx), ("opened", outside)):
        cond = Condition(rule_id="r", zone="table", since=0.0, score=0.83, bbox=(0.1, 0.2, 0.3, 0.9))
        change = IncidentChange(status, "inc-1", c.camera_id, "r", "table", 5.0, 1.0, cond)
        out.append(factory.make(change, c, t, {"snapshot": StoredItem("/evidence/x.jpg", "0" * 64)},
                                media_time_s=5.0))
    return out


def test_schema_file_is_current():
    assert json.loads(SCHEMA_PATH.read_text(encoding="utf-8")) == event_json_schema(), \
        "docs/event.schema.json is stale: run `make reference`"


async def test_real_events_validate_as_they_leave_the_outbox(tmp_path):
    v = validator()
    store = open_store(tmp_path / "o.db")
    try:
        for ev in real_events():
            await store.append(ev)
        pending = await store.pending(10)
    finally:
        store.close()
    assert len(pending) == 3
    for rec in pending:  # the exact bytes that go to Kafka
        doc = json.loads(rec.payload)
        v.validate(doc)
    assert json.loads(pending[2].payload)["grid"] is None


@pytest.mark.parametrize("mutate, word", [
    (lambda d: d.pop("event_id"), "event_id"),
    (lambda d: d.update(status="closed"), "closed"),
    (lambda d: d["location"].update(crs="epsg:4326"), "epsg"),
    (lambda d: d.update(confidence=1.5), "1.5"),
    (lambda d: d.update(extra="x"), "extra"),
])
def test_schema_rejects_wrong_events(mutate, word):
    doc = json.loads(real_events()[0].model_dump_json())
    mutate(doc)
    errors = list(validator().iter_errors(doc))
    assert errors and any(word in e.message for e in errors), [e.message for e in errors]


def test_asyncapi_parses_and_references_the_schema():
    doc = yaml.safe_load(ASYNCAPI.read_text(encoding="utf-8"))
    assert doc["asyncapi"].startswith("3.")
    channel = doc["channels"]["events"]
    assert channel["address"] == KafkaConfig().topic
    msg = doc["components"]["messages"]["event"]
    ref = msg["payload"]["schema"]["$ref"]
    assert (ASYNCAPI.parent / ref).resolve() == SCHEMA_PATH.resolve()
    # headers documented are exactly the ones the outbox sends
    sent = {name for name, _ in _headers_sent()}
    assert set(msg["headers"]["properties"]) == sent == set(msg["headers"]["required"])
    # internal references resolve
    op = doc["operations"]["publishEvent"]
    assert op["channel"]["$ref"] == "#/channels/events"
    assert channel["messages"]["event"]["$ref"] == "#/components/messages/event"


def _headers_sent():
    import asyncio
    import tempfile
    from pathlib import Path

    async def go():
        with tempfile.TemporaryDirectory() as d:
            store = open_store(Path(d) / "o.db")
            try:
                await store.append(real_events()[0])
                return (await store.pending(1))[0].headers
            finally:
                store.close()
    return asyncio.run(go())
