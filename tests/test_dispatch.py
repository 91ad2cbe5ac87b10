"""Outbox → Kafka dispatch (bridge.kafka.dispatch) against a real noida-db Kafka broker."""
from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from prometheus_client import REGISTRY

from bridge.kafka.dispatch import KafkaConfig, KafkaDispatcher
from bridge.events.model import Event
from bridge.store.outbox import EventStore, open_store

from tests.brokers import NoidaKafka, consume_all, free_port

T0 = datetime(2025, 3, 1, 8, 0, tzinfo=timezone(timedelta(hours=8)))
GRIDS = [f"33010200{i}001" for i in range(1, 6)]


def make_event(grid: str, n: int) -> Event:
    """Event number `n` of `grid`; `n` travels in source.media_time_s and the event_id."""
    return Event.model_validate(
        {
            "event_id": f"evt-{grid}-{n:04d}",
            "incident_id": f"inc-{grid}-{n // 2:04d}",
            "status": "opened" if n % 2 == 0 else "cleared",
            "category": {"code": "street-order.loitering", "name": "loitering"},
            "occurred_at": (T0 + timedelta(seconds=n)).isoformat(),
            "source": {"kind": "video", "camera_id": f"cam-{grid[-4:]}", "media_time_s": float(n)},
            "location": {"lon": 120.17, "lat": 30.25, "crs": "wgs84"},
            "grid": {"code": grid, "name": f"grid {grid}"},
            "confidence": 0.8,
            "evidence": {"snapshot": None, "bbox": None},
            "detector": {"model": "yolov8n", "rule": "loiter-1", "config_hash": "abc123"},
        }
    )


def events_round_robin(per_grid: int, start: int = 0) -> list[Event]:
    return [make_event(g, n) for n in range(start, start + per_grid) for g in GRIDS]


async def wait_until(pred: Callable[[], Awaitable[bool]], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not await pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(0.1)


def check_delivery(records, events: list[Event]) -> None:
    """Every event arrived exactly once, keyed by grid, in order per key, with headers."""
    ids = [Event.model_validate_json(r.value).event_id for r in records]
    missing = {e.event_id for e in events} - set(ids)
    assert not missing, f"{len(missing)} events never arrived, e.g. {sorted(missing)[:5]}"
    dupes = len(ids) - len(set(ids))
    assert dupes == 0, f"{dupes} duplicates in a run without failures"

    per_key: dict[bytes, list[float]] = defaultdict(list)
    for r in records:
        ev = Event.model_validate_json(r.value)
        assert r.key == ev.grid.code.encode(), "Kafka key must be the grid code"
        headers = dict(r.headers)
        assert headers == {
            "schema_version": b"1",
            "category": b"street-order.loitering",
            "grid": ev.grid.code.encode(),
        }
        per_key[r.key].append(ev.source.media_time_s)
    assert set(per_key) == {g.encode() for g in {e.grid.code for e in events}}
    for key, ns in per_key.items():
        assert ns == sorted(ns), f"key {key!r} out of order: {ns}"


@contextlib.asynccontextmanager
async def running(dispatcher: KafkaDispatcher):
    task = asyncio.create_task(dispatcher.run())
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 15)
        assert not dispatcher.connected
        assert dispatcher._producer is None, "producer not stopped on cancel"


async def append_all(store: EventStore, dispatcher: KafkaDispatcher, events: list[Event]) -> None:
    for e in events:
        await store.append(e)
        dispatcher.notify()


def metric(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


@pytest.mark.timeout(60)
@pytest.mark.parametrize("compression", [None, "zstd"])
async def test_delivers_in_order_per_grid(kafka_broker: NoidaKafka, tmp_path, compression) -> None:
    topic = "xueliang.events.test"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_broker.bootstrap)
    await admin.start()
    try:  # several partitions, so keys really are spread and ordering is per partition
        await admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
    finally:
        await admin.close()

    store = open_store(tmp_path / "outbox.db", fsync=False)
    cfg = KafkaConfig(
        bootstrap_servers=kafka_broker.bootstrap, topic=topic, compression=compression,
        batch_size=64,  # several rounds for 200 events
    )
    dispatcher = KafkaDispatcher(store, cfg)
    sent_before = metric("xueliang_dispatch_sent_total")
    events = events_round_robin(per_grid=40)  # 200 events over 5 grids
    t0 = time.monotonic()
    try:
        async with running(dispatcher):
            # half before the dispatcher's first round, half while it runs
            await append_all(store, dispatcher, events[:100])
            await asyncio.sleep(0)
            await append_all(store, dispatcher, events[100:])
            await wait_until(lambda: _backlog_is(store, 0), 20, "outbox backlog to reach 0")
            elapsed = time.monotonic() - t0
            assert dispatcher.connected
            assert dispatcher.sent == 200
            assert dispatcher.failures == 0, dispatcher.last_error
            assert metric("xueliang_dispatch_sent_total") - sent_before == 200
            await wait_until(_true_after(1.2), 5, "a poll")  # the gauge follows on idle polls
            assert metric("xueliang_outbox_backlog") == 0
        records = await consume_all(kafka_broker.bootstrap, topic, expected_n=200, timeout_s=20)
    finally:
        store.close()
    assert len(records) == 200
    check_delivery(records, events)
    print(f"200 events dispatched in {elapsed:.2f} s (compression={compression})")


@pytest.mark.timeout(90)
async def test_broker_down_at_start_then_comes_up(tmp_path) -> None:
    port = free_port()  # the broker will appear here later
    bootstrap = f"127.0.0.1:{port}"
    topic = "xueliang.events"
    store = open_store(tmp_path / "outbox.db", fsync=True)
    # default backoff (1 s doubling, capped at 15 s): retries at about 0, 1, 3, 7, 15 s
    cfg = KafkaConfig(bootstrap_servers=bootstrap, topic=topic)
    dispatcher = KafkaDispatcher(store, cfg)
    early = events_round_robin(per_grid=10)  # 50 events while Kafka is down
    late = events_round_robin(per_grid=5, start=10)  # 25 more once it is up
    broker = NoidaKafka(port=port)
    try:
        async with running(dispatcher):
            await append_all(store, dispatcher, early)
            await asyncio.sleep(10)
            assert not dispatcher.connected
            assert dispatcher.failures >= 3, "should have kept retrying"
            assert "KafkaConnectionError" in (dispatcher.last_error or "")
            assert await store.backlog() == 50, "nothing may be marked delivered without Kafka"
            assert dispatcher.backlog == 50

            t_up = time.monotonic()
            await asyncio.to_thread(broker.start)
            await wait_until(lambda: _backlog_is(store, 0), 25, "the backlog to drain")
            recovered = time.monotonic() - t_up
            assert dispatcher.connected
            await append_all(store, dispatcher, late)
            await wait_until(lambda: _backlog_is(store, 0), 10, "the new events to go out")
            assert dispatcher.sent == 75
        records = await consume_all(bootstrap, topic, expected_n=75, timeout_s=20)
        assert len(records) == 75
        check_delivery(records, early + late)
        print(f"backlog of 50 drained {recovered:.2f} s after the broker was started")
    finally:
        broker.stop()
        store.close()


@pytest.mark.timeout(90)
async def test_broker_lost_mid_run_then_replaced(tmp_path) -> None:
    """The broker dies while the dispatcher is connected; a fresh one appears on the same port.

    aiokafka retries a produce request forever while the broker is gone, so this exercises
    ack_timeout_s and aborting the stuck producer. Records sent to the first broker are lost
    with it (fresh data dir); everything appended after it died must reach the second.
    """
    port = free_port()
    topic = "xueliang.events"
    first = NoidaKafka(port=port).start()
    second = NoidaKafka(port=port)
    store = open_store(tmp_path / "outbox.db", fsync=False)
    cfg = KafkaConfig(
        bootstrap_servers=first.bootstrap, topic=topic, ack_timeout_s=3.0, stop_timeout_s=2.0,
        retry_backoff_s=0.5, retry_backoff_max_s=2.0,
    )
    dispatcher = KafkaDispatcher(store, cfg)
    before = events_round_robin(per_grid=4)
    after = events_round_robin(per_grid=10, start=4)
    try:
        async with running(dispatcher):
            await append_all(store, dispatcher, before)
            await wait_until(lambda: _backlog_is(store, 0), 15, "delivery to the first broker")
            assert dispatcher.connected

            first.stop()
            await append_all(store, dispatcher, after)
            await wait_until(
                lambda: _value(not dispatcher.connected and dispatcher.failures > 0),
                15, "the dispatcher to notice the broker is gone",
            )
            assert await store.backlog() == len(after)

            await asyncio.to_thread(second.start)
            await wait_until(lambda: _backlog_is(store, 0), 20, "delivery to the second broker")
            assert dispatcher.connected
        records = await consume_all(second.bootstrap, topic, expected_n=len(after), timeout_s=20)
    finally:
        first.stop()
        second.stop()
        store.close()
    # duplicates are allowed after a failure, losses are not; per key the first copies of
    # each event still come in order
    ids = [Event.model_validate_json(r.value).event_id for r in records]
    assert {e.event_id for e in after} <= set(ids)
    per_key: dict[bytes, list[float]] = defaultdict(list)
    for r in records:
        n = Event.model_validate_json(r.value).source.media_time_s
        if n not in per_key[r.key]:
            per_key[r.key].append(n)
    for key, ns in per_key.items():
        assert ns == sorted(ns), f"key {key!r} out of order: {ns}"


async def test_no_kafka_configured_keeps_events_in_outbox(tmp_path) -> None:
    store = open_store(tmp_path / "outbox.db", fsync=False)
    dispatcher = KafkaDispatcher(store, KafkaConfig())
    try:
        async with running(dispatcher):
            await append_all(store, dispatcher, events_round_robin(per_grid=2))
            await asyncio.sleep(0.2)
            assert not dispatcher.enabled and not dispatcher.connected
            assert await store.backlog() == 10
    finally:
        store.close()


def test_config_rejects_idempotence_without_acks_all() -> None:
    with pytest.raises(ValueError, match="idempotent=true requires acks='all'"):
        KafkaConfig(bootstrap_servers="x:9092", acks=1)
    assert KafkaConfig(bootstrap_servers="x:9092", acks=1, idempotent=False).acks == 1


async def _backlog_is(store: EventStore, n: int) -> bool:
    return await store.backlog() == n


async def _value(v: bool) -> bool:
    return v


def _true_after(seconds: float) -> Callable[[], Awaitable[bool]]:
    deadline = time.monotonic() + seconds

    async def pred() -> bool:
        return time.monotonic() >= deadline

    return pred
