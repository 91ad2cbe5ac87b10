"""Outbox -> Kafka across a 10-minute broker outage (simulated time) and a SIGKILL mid-send,
against real Kafka-protocol brokers: noida-db, and Tansu with idempotence off."""
from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import defaultdict
from datetime import datetime, timedelta, timezone

import pytest
from prometheus_client import REGISTRY

from bridge.kafka.dispatch import KafkaConfig, KafkaDispatcher
from bridge.events.model import Event
from bridge.store.outbox import open_store
from tests.brokers import NoidaKafka, TansuKafka, consume_all
from tests.helpers import REPO

T0 = datetime(2026, 11, 22, 8, 0, tzinfo=timezone(timedelta(hours=8)))
GRIDS = [f"990001{s:03d}{c:03d}{g:03d}" for s in (1, 2) for c in (1, 2) for g in range(1, 6)]  # 20


def make_event(n: int) -> Event:
    """Event `n`: grid n % 20; n travels in media_time_s so per-grid order can be checked."""
    grid = GRIDS[n % len(GRIDS)]
    return Event.model_validate({
        "event_id": f"evt-{n:06d}", "incident_id": f"inc-{n // 40:05d}",
        "status": "opened", "category": {"code": "sanitation.garbage-overflow", "name": "垃圾清运不及时"},
        "occurred_at": (T0 + timedelta(seconds=n * 0.06)).isoformat(),
        "source": {"kind": "video", "camera_id": f"cam-{n % 7}", "media_time_s": float(n)},
        "location": {"lon": 117.015, "lat": 36.665, "crs": "wgs84"},
        "grid": {"code": grid, "name": f"grid {grid}"}, "confidence": 0.8,
        "evidence": {"snapshot": None, "bbox": None},
        "detector": {"model": "yolov8n", "rule": "r", "config_hash": "h"},
    })


class SimClock:
    """Virtual time for the dispatcher's backoff: sleeps end only when the test advances."""

    def __init__(self) -> None:
        self.now = 0.0
        self._sleepers: list[tuple[float, asyncio.Future]] = []

    async def sleep(self, seconds: float) -> None:
        fut = asyncio.get_running_loop().create_future()
        self._sleepers.append((self.now + seconds, fut))
        await fut

    @property
    def sleeping(self) -> bool:
        return any(not f.done() for _, f in self._sleepers)

    def advance(self, seconds: float) -> None:
        self.now += seconds
        for wake, fut in self._sleepers:
            if wake <= self.now and not fut.done():
                fut.set_result(None)
        self._sleepers = [(w, f) for w, f in self._sleepers if not f.done()]


async def until(pred, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not await pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(0.02)


def check_all_delivered(records, events: list[Event]) -> int:
    """None lost; duplicates identical (same event_id, same bytes); per grid in order.
    Returns the number of duplicates."""
    by_id: dict[str, bytes] = {}
    per_key: dict[bytes, list[float]] = defaultdict(list)
    dupes = 0
    for r in records:
        ev = Event.model_validate_json(r.value)
        assert r.key == ev.grid.code.encode()
        if ev.event_id in by_id:
            assert by_id[ev.event_id] == r.value, f"duplicate {ev.event_id} differs"
            dupes += 1
            continue
        by_id[ev.event_id] = r.value
        per_key[r.key].append(ev.source.media_time_s)
    missing = {e.event_id for e in events} - set(by_id)
    assert not missing, f"{len(missing)} events lost, e.g. {sorted(missing)[:5]}"
    for key, ns in per_key.items():
        assert ns == sorted(ns), f"grid {key!r} out of order"
    return dupes


BROKERS = [pytest.param(NoidaKafka, id="noida"), pytest.param(TansuKafka, id="tansu")]


@pytest.mark.timeout(240)
@pytest.mark.parametrize("broker_cls", BROKERS)
async def test_ten_minute_outage_10k_events_all_delivered_in_order(tmp_path, broker_cls) -> None:
    broker = broker_cls().start()
    topic = "xueliang.outage"
    store = open_store(tmp_path / "outbox.db", fsync=True)
    cfg = KafkaConfig(bootstrap_servers=broker.bootstrap, topic=topic,
                      idempotent=broker.supports_idempotence, ack_timeout_s=2.0, stop_timeout_s=1.0,
                      request_timeout_ms=2000, retry_backoff_s=1.0, retry_backoff_max_s=15.0)
    clock = SimClock()
    dispatcher = KafkaDispatcher(store, cfg, poll_interval_s=0.2, sleep=clock.sleep)
    before = [make_event(n) for n in range(200)]
    during = [make_event(n) for n in range(200, 10_200)]
    task = asyncio.create_task(dispatcher.run())
    try:
        await store.append_many(before)
        dispatcher.notify()
        await until(lambda: _backlog(store, 0), 30, "delivery before the outage")
        broker.stop(keep_data=broker.keeps_data)
        failures0 = dispatcher.failures

        # 600 simulated seconds, 10,000 events, appended every simulated second as they come
        for sec in range(600):
            lo, hi = sec * len(during) // 600, (sec + 1) * len(during) // 600
            await store.append_many(during[lo:hi])
            dispatcher.notify()
            await until(lambda: _value(clock.sleeping), 30, f"the dispatcher to back off ({sec} s)")
            clock.advance(1.0)
        assert clock.now == 600
        assert await store.backlog() == 10_000
        assert REGISTRY.get_sample_value("xueliang_outbox_backlog") == 10_000
        # backoff capped at 15 s: it kept trying all along (>= 600/15 attempts)
        assert dispatcher.failures - failures0 >= 40, dispatcher.failures - failures0
        assert not dispatcher.connected

        await asyncio.to_thread(broker.start)
        deadline = time.monotonic() + 120
        while await store.backlog() > 0:
            assert time.monotonic() < deadline, "backlog did not drain after the broker came back"
            if clock.sleeping:
                clock.advance(1.0)
            await asyncio.sleep(0.05)
        assert dispatcher.connected
        expected = before + during if broker.keeps_data else during
        records = await consume_all(broker.bootstrap, topic, expected_n=len(expected), timeout_s=60)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        store.close()
        broker.stop()
    dupes = check_all_delivered(records, expected)
    print(f"{broker.name}: {len(records)} records, {dupes} duplicates, "
          f"{dispatcher.failures - failures0} failed attempts in 600 simulated s")


@pytest.mark.timeout(180)
@pytest.mark.parametrize("broker_cls", BROKERS)
async def test_sigkill_mid_send_nothing_lost_duplicates_keep_event_id(tmp_path, broker_cls) -> None:
    db = tmp_path / "outbox.db"
    events = [make_event(n) for n in range(5000)]
    store = open_store(db, fsync=True)
    await store.append_many(events)
    store.close()
    topic = "xueliang.kill"
    with broker_cls() as broker:
        cmd = [sys.executable, "-m", "tests.kill_child", str(db), broker.bootstrap, topic,
               "1" if broker.supports_idempotence else "0"]
        child = subprocess.Popen([*cmd, "0.3"], cwd=REPO, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE)
        seen = _Tail(broker.bootstrap, topic)
        tail = asyncio.create_task(seen.run())
        try:
            # Kill when Kafka holds records the outbox has not marked delivered yet: mid-send.
            deadline = time.monotonic() + 60
            while not (_delivered(db) >= 500 and seen.count > _delivered(db)):
                assert child.poll() is None, child.stderr.read().decode()[-2000:]
                assert time.monotonic() < deadline, "never caught the child mid-send"
                await asyncio.sleep(0.005)
            os.kill(child.pid, signal.SIGKILL)
            child.wait(10)
        finally:
            tail.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await tail
            if child.poll() is None:
                os.kill(child.pid, signal.SIGKILL)
                child.wait(10)
        killed_at = _delivered(db)
        assert 500 <= killed_at < len(events), f"kill came too late ({killed_at} delivered)"

        res = await asyncio.to_thread(subprocess.run, cmd, cwd=REPO, capture_output=True,
                                      timeout=90)
        assert res.returncode == 0, res.stderr.decode()[-2000:]
        assert _delivered(db) == len(events)
        records = await consume_all(broker.bootstrap, topic, expected_n=len(events), timeout_s=30)
        # the consumer stops at expected_n; read on briefly to see duplicates as well
        more = await consume_all(broker.bootstrap, topic, expected_n=len(events) + 10_000,
                                 timeout_s=3)
    assert len(more) >= len(records)
    dupes = check_all_delivered(more, events)
    assert dupes > 0, "the kill fell between rounds; nothing was in flight"
    print(f"{broker.name}: killed after {killed_at} marked delivered; {len(more)} records, "
          f"{dupes} duplicates, each with the same event_id and bytes")


class _Tail:
    """Counts the records arriving on a topic, from the beginning, while the child sends."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.bootstrap, self.topic, self.count = bootstrap, topic, 0

    async def run(self) -> None:
        from aiokafka import AIOKafkaConsumer

        consumer = AIOKafkaConsumer(self.topic, bootstrap_servers=self.bootstrap, group_id=None,
                                    auto_offset_reset="earliest", metadata_max_age_ms=200)
        await consumer.start()
        try:
            while True:
                batches = await consumer.getmany(timeout_ms=50)
                self.count += sum(len(v) for v in batches.values())
        finally:
            await consumer.stop()


def _delivered(db) -> int:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as c:
        return c.execute("SELECT count(*) FROM events WHERE delivered_at IS NOT NULL").fetchone()[0]


async def _backlog(store, n: int) -> bool:
    return await store.backlog() == n


async def _value(v: bool) -> bool:
    return v
