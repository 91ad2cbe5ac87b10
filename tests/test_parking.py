"""Poison records (bridge.store.parked_records): a record Kafka refuses for good is parked and the queue flows on.

Against a real noida-db broker, which enforces a topic's `max.message.bytes` (Tansu 0.6 accepts
any size, so it cannot play the refusing broker), and the producer's own `max_request_size`.
"""
from __future__ import annotations

import asyncio
import json

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (KafkaConnectionError, KafkaTimeoutError, MessageSizeTooLargeError, NotLeaderForPartitionError,
                             RecordTooLargeError, RequestTimedOutError, TopicAuthorizationFailedError)

from bridge.store.audit import ConsoleDb
from bridge.kafka.dispatch import KafkaConfig, KafkaDispatcher
from bridge.events.model import Event
from bridge.store.outbox import EventStore
from bridge.store.parked_records import is_permanent, park_row, parked_count, parked_rows, release_rows

from tests.brokers import NoidaKafka, consume_all
from tests.console_app import bench_config
from tests.helpers import xueliang
from tests.test_dispatch import GRIDS, make_event, metric, running, wait_until


def poison(grid: str, n: int, size: int) -> Event:
    """A valid event whose grid name makes it `size` bytes bigger: the serialisation bug of the day."""
    ev = make_event(grid, n)
    return ev.model_copy(update={"grid": ev.grid.model_copy(update={"name": "x" * size})})


async def create_topic(bootstrap: str, topic: str, max_message_bytes: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 3, 1, topic_configs={"max.message.bytes": str(max_message_bytes)})])
    finally:
        await admin.close()


def config(bootstrap: str, topic: str, **kw) -> KafkaConfig:
    return KafkaConfig(bootstrap_servers=bootstrap, topic=topic, retry_backoff_s=0.05, retry_backoff_max_s=0.2,
                       ack_timeout_s=10, linger_ms=20, **kw)


def test_permanent_and_retriable_errors_are_told_apart() -> None:
    for exc in (MessageSizeTooLargeError(), RecordTooLargeError(), TopicAuthorizationFailedError()):
        assert is_permanent(exc), exc
    for exc in (KafkaConnectionError(), NotLeaderForPartitionError(), RequestTimedOutError(), KafkaTimeoutError()):
        assert not is_permanent(exc), exc
    assert is_permanent(TypeError("headers must be bytes"), at_send=True)
    assert not is_permanent(TypeError("x")) and not is_permanent(OSError("disk"), at_send=True)


async def test_broker_refuses_oversized_record_it_is_parked_and_the_rest_flow(kafka_broker: NoidaKafka, tmp_path) -> None:
    """The topic takes 64 KiB batches at most; one event of ~100 KB shares its producer batch with
    others, so the broker refuses that batch whole. The dispatcher finds the culprit by sending
    alone, parks it after `park_after_attempts`, and every other event arrives, in order per key."""
    topic = "events.small"
    await create_topic(kafka_broker.bootstrap, topic, 65536)
    before = metric("xueliang_dispatch_parked_total")
    store = EventStore(tmp_path / "outbox.sqlite3")
    try:
        good_before = [make_event(g, n) for n in range(4) for g in GRIDS]
        bad = poison(GRIDS[0], 4, 100_000)
        good_after = [make_event(g, n) for n in range(5, 9) for g in GRIDS]
        await store.append_many(good_before + [bad] + good_after)
        bad_seq = (await store.get(bad.event_id)).seq
        # Default 256 KiB producer batches: the poison record shares a batch with the events of its
        # partition before it, and the first refused row is an innocent one.
        dispatcher = KafkaDispatcher(store, config(kafka_broker.bootstrap, topic, idempotent=True,
                                                   park_after_attempts=2), poll_interval_s=0.2)
        async with running(dispatcher):
            await wait_until(lambda: _backlog_zero(store), 60, "the outbox to drain past the poison record")
        good = good_before + good_after
        records = await consume_all(kafka_broker.bootstrap, topic, len(good), timeout_s=30)
        got = [Event.model_validate_json(r.value) for r in records]
        ids = {e.event_id for e in got}
        assert ids >= {e.event_id for e in good}, "an event behind the poison record was not delivered"
        assert bad.event_id not in ids
        per_key: dict[str, list[float]] = {}
        for e in got:  # duplicates from the refused batches may repeat a record; order holds per key
            seen = per_key.setdefault(e.grid.code, [])
            if e.source.media_time_s not in seen:
                seen.append(e.source.media_time_s)
        assert all(v == sorted(v) for v in per_key.values()), per_key

        rows = await store.on_connection(parked_rows)
        assert [r["seq"] for r in rows] == [bad_seq]
        assert "MessageSizeTooLargeError" in rows[0]["error"] and rows[0]["attempts"] == 2
        assert rows[0]["payload_bytes"] > 100_000
        stored = await store.get(bad.event_id)
        assert stored.suppressed.startswith("parked: ")  # kept, listed, not sent
        assert dispatcher.parking.parked == 1 and metric("xueliang_dispatch_parked_total") == before + 1
        assert metric("xueliang_outbox_parked") == 1
    finally:
        store.close()


async def test_producer_refusal_parks_then_admin_resend_after_the_fix_delivers(kafka_broker: NoidaKafka, tmp_path) -> None:
    """A record over the producer's `max_request_size` is refused before sending; after the limit is
    raised (the fix) an admin re-sends it and it arrives, after its key's later events."""
    topic = "events.parking"
    store = EventStore(tmp_path / "outbox.sqlite3")
    try:
        bad = poison(GRIDS[1], 1, 20_000)
        events = [make_event(GRIDS[1], 0), bad, make_event(GRIDS[1], 2), make_event(GRIDS[2], 3)]
        await store.append_many(events)
        dispatcher = KafkaDispatcher(store, config(kafka_broker.bootstrap, topic, max_request_size=8192,
                                                   park_after_attempts=3), poll_interval_s=0.2)
        async with running(dispatcher):
            await wait_until(lambda: _backlog_zero(store), 60, "the outbox to drain past the poison record")
            assert await store.on_connection(parked_count) == 1
        assert "MessageSizeTooLargeError" in (await store.on_connection(parked_rows))[0]["error"]

        assert await store.on_connection(lambda db: release_rows(db, None)) == [(await store.get(bad.event_id)).seq]
        assert await store.backlog() == 1 and (await store.get(bad.event_id)).suppressed is None
        fixed = KafkaDispatcher(store, config(kafka_broker.bootstrap, topic, max_request_size=1048576),
                                poll_interval_s=0.2)
        async with running(fixed):
            await wait_until(lambda: _backlog_zero(store), 60, "the re-sent record to be delivered")
        records = await consume_all(kafka_broker.bootstrap, topic, len(events), timeout_s=30)
        order = [Event.model_validate_json(r.value).event_id for r in records if r.key == GRIDS[1].encode()]
        # What parking does to a key's order: the re-sent record comes after the key's later events.
        assert order == [events[0].event_id, events[2].event_id, bad.event_id]
        assert await store.on_connection(parked_count) == 0
    finally:
        store.close()


async def _backlog_zero(store: EventStore) -> bool:
    return await store.backlog() == 0


async def test_cli_lists_and_resends_parked_records_while_the_store_is_open(tmp_path) -> None:
    cfg = bench_config(tmp_path)
    store = EventStore(tmp_path / "outbox.sqlite3")  # as a running service holds it
    try:
        seqs = [await store.append(make_event(GRIDS[0], n)) for n in range(3)]
        for seq in seqs[1:]:
            await store.on_connection(lambda db, seq=seq: park_row(db, seq, "MessageSizeTooLargeError()", 3))
        out = await asyncio.to_thread(xueliang, "outbox", "parked", "-c", str(cfg), "--json")
        assert out.returncode == 0, out.stderr
        rows = [json.loads(line) for line in out.stdout.splitlines()]
        assert [r["seq"] for r in rows] == seqs[1:] and rows[0]["error"] == "MessageSizeTooLargeError()"
        assert (await asyncio.to_thread(xueliang, "outbox", "resend", "-c", str(cfg))).returncode == 2  # seqs or --all
        out = await asyncio.to_thread(xueliang, "outbox", "resend", "-c", str(cfg), str(seqs[1]), str(seqs[0]))
        assert out.returncode == 1 and f"not parked: {seqs[0]}" in out.stderr  # seqs[1] went, seqs[0] never was parked
        assert await store.backlog() == 2 and await store.on_connection(parked_count) == 1
        out = await asyncio.to_thread(xueliang, "outbox", "resend", "-c", str(cfg), "--all")
        assert out.returncode == 0 and await store.backlog() == 3
        audit = [(e["action"], e["detail"]) for e in ConsoleDb(tmp_path / "console.sqlite3").entries()]
        assert audit == [("outbox.resend", {"seqs": [seqs[2]]}), ("outbox.resend", {"seqs": [seqs[1]]})]
    finally:
        store.close()
