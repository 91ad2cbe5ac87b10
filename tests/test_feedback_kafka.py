"""End to end on a real Kafka-protocol broker (noida-db) with `xueliang run` on the looping demo
clip (stays at the table at about 7.5-18.5 s and 23.5-44 s of every 47 s loop):

- a verify request while someone stands at the table is answered `still_present: true` with a
  fresh snapshot; one sent just after the incident cleared is answered `false`;
- a closed work order keeps the next incident at the same table out of Kafka (kept in the outbox,
  marked suppressed) until its window ends; the one after the window is published;
- bad feedback messages are counted and logged with partition and offset; the consumer goes on.
"""
from __future__ import annotations

import hashlib
import json
import time
from datetime import datetime

import httpx
from aiokafka import AIOKafkaProducer

from tests.brokers import NoidaKafka, consume_all
from tests.service_proc import ServiceProcess, feedback_config, wait_for

SUPPRESS_S = 20


async def test_work_order_closed_suppresses_and_verify_request_looks_again(tmp_path):
    broker = NoidaKafka().start()
    producer = None
    try:
        doc = await feedback_config(tmp_path, broker.bootstrap)
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
        await producer.start()

        async def send(msg):
            await producer.send_and_wait("grid.feedback", msg if isinstance(msg, bytes) else json.dumps(msg).encode())

        async with ServiceProcess(tmp_path, doc) as svc, httpx.AsyncClient(base_url=svc.base, timeout=5, headers=svc.headers) as api:
            async def events(**params):
                return (await api.get("/events", params={"limit": 1000, **params})).json()["events"]

            await send(b"not json at all")  # offset 0
            await send({"type": "verify_request", "incident_id": "no-such-incident", "request_id": "x"})

            async def first_opened():
                return await events(status="opened")

            inc = (await wait_for(first_opened, 40, "a first incident", svc.proc))[-1]
            await send({"type": "verify_request", "incident_id": inc["incident_id"], "request_id": "while-there"})

            async def verified(request_id):
                async def found():
                    return [e for e in await events(status="verified")
                            if e["verification"]["request_id"] == request_id]
                return (await wait_for(found, 15, f"verification {request_id}", svc.proc))[0]

            there = await verified("while-there")

            async def cleared():
                return [e for e in await events(status="cleared") if e["incident_id"] == inc["incident_id"]]

            await wait_for(cleared, 30, "the incident to clear", svc.proc)
            # Nobody at the table now (the next stay qualifies some 5 s later): look again, close the order.
            await send({"type": "verify_request", "incident_id": inc["incident_id"], "request_id": "after-leaving"})
            await send({"type": "work_order_closed", "incident_id": inc["incident_id"], "suppress_s": SUPPRESS_S})
            closed_at = time.time()
            gone = await verified("after-leaving")

            async def reopened_after_window():
                return [e for e in await events(status="opened")
                        if e["incident_id"] != inc["incident_id"] and "suppressed" not in e]

            after = (await wait_for(reopened_after_window, 70, "an incident after the window", svc.proc))[0]

            async def drained():
                return (await api.get("/readyz")).json()["outbox_backlog"] == 0

            await wait_for(drained, 20, "the outbox to drain", svc.proc)
            stored = await events()
            metrics = (await api.get("/metrics")).text
            assert await svc.stop() == 0
        log = svc.log()

        # verification: right answers, fresh snapshots, same incident and grid (same partition)
        assert there["verification"]["still_present"] is True and gone["verification"]["still_present"] is False
        for v in (there, gone):
            assert v["incident_id"] == inc["incident_id"] and v["grid"]["code"] == inc["grid"]["code"]
            snap = v["evidence"]["snapshot"]
            assert snap and snap != inc["evidence"]["snapshot"]
            assert hashlib.sha256((tmp_path / "evidence" / snap.rsplit("/", 1)[1]).read_bytes()).hexdigest() \
                == v["evidence"]["sha256"]["snapshot"]
            assert datetime.fromisoformat(v["occurred_at"]) > datetime.fromisoformat(inc["occurred_at"])
        assert there["evidence"]["bbox"] and gone["evidence"]["bbox"] is None

        # suppression: the incident opened inside the window is in the outbox, marked, never sent
        held = [e for e in stored if "suppressed" in e]
        held_opened = [e for e in held if e["status"] == "opened"]
        assert held_opened, "the next stay at the table was not suppressed"
        for e in held_opened:
            assert datetime.fromisoformat(e["occurred_at"]).timestamp() < closed_at + SUPPRESS_S
        assert datetime.fromisoformat(after["occurred_at"]).timestamp() >= closed_at + SUPPRESS_S - 1
        sent = [e for e in stored if "suppressed" not in e]
        records = await consume_all(broker.bootstrap, "grid.dispatch", len(sent), timeout_s=20)
        on_kafka = {json.loads(r.value)["event_id"] for r in records}
        assert on_kafka == {e["event_id"] for e in sent}
        assert not on_kafka & {e["event_id"] for e in held}
        assert {there["event_id"], gone["event_id"], after["event_id"]} <= on_kafka

        # bad messages: counted, logged with where they were, and the consumer carried on
        rejected = [json.loads(line) for line in log.splitlines() if "feedback message rejected" in line]
        assert [(r["reason"], r["partition"], r["offset"]) for r in rejected] == \
            [("invalid_json", 0, 0), ("unknown_incident", 0, 1)], rejected
        assert 'xueliang_feedback_rejected_total{reason="invalid_json"} 1.0' in metrics
        assert 'xueliang_events_suppressed_total{category="market.road-occupation",status="opened"}' in metrics
    finally:
        if producer is not None:
            await producer.stop()
        broker.stop()
