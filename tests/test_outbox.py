"""The durable outbox / event log (bridge.store.outbox) on a real SQLite file."""
from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import datetime, timedelta, timezone

import pytest

from bridge.events.model import Event
from bridge.store.outbox import EventStore, StoreClosedError, open_store

T0 = datetime(2025, 3, 1, 8, 0, tzinfo=timezone(timedelta(hours=8)))


def make_event(
    n: int,
    *,
    grid: str | None = "330102001001",
    status: str = "opened",
    category: str = "street-order.loitering",
    camera: str = "cam-01",
    event_id: str | None = None,
) -> Event:
    return Event.model_validate(
        {
            "event_id": event_id or f"evt-{n:05d}",
            "incident_id": f"inc-{n // 3:05d}",
            "status": status,
            "category": {"code": category, "name": category.split(".")[-1]},
            "occurred_at": (T0 + timedelta(seconds=n)).isoformat(),
            "source": {"kind": "video", "camera_id": camera, "media_time_s": float(n)},
            "location": {"lon": 120.17, "lat": 30.25, "crs": "wgs84"},
            "grid": {"code": grid, "name": f"grid {grid}"} if grid else None,
            "grid_reason": None if grid else "outside every grid",
            "confidence": 0.9,
            "evidence": {"snapshot": f"/snapshots/{n}.jpg", "bbox": [0.1, 0.2, 0.3, 0.4]},
            "detector": {"model": "yolov8n", "rule": "loiter-1", "config_hash": "abc123"},
        }
    )


@pytest.fixture
def store(tmp_path):
    s = open_store(tmp_path / "events.db", fsync=False)
    try:
        yield s
    finally:
        s.close()


async def test_append_pending_mark_backlog(store: EventStore) -> None:
    events = [make_event(i, grid=None if i == 2 else f"3301020010{i % 2:02d}") for i in range(5)]
    seqs = [await store.append(e) for e in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == 5
    assert await store.backlog() == 5

    pending = await store.pending(limit=10)
    assert [p.seq for p in pending] == seqs
    for p, e in zip(pending, events):
        assert p.key == e.key
        assert p.payload == e.model_dump_json().encode()
        assert Event.model_validate_json(p.payload) == e
        headers = dict(p.headers)
        assert headers == {
            "schema_version": b"1",
            "category": b"street-order.loitering",
            "grid": e.grid.code.encode() if e.grid else b"",
        }
    assert pending[2].key == "unresolved"

    assert [p.seq for p in await store.pending(limit=2)] == seqs[:2]

    assert await store.mark_delivered(seqs[:3]) == 3
    assert await store.mark_delivered(seqs[:3]) == 0  # already delivered: no change
    assert await store.mark_delivered([]) == 0
    assert await store.backlog() == 2
    assert [p.seq for p in await store.pending(limit=10)] == seqs[3:]

    await store.mark_delivered(seqs[3:])
    assert await store.backlog() == 0
    assert await store.pending(limit=10) == []
    # delivered rows stay in the event log
    assert len(await store.query()) == 5


async def test_durable_across_close_and_reopen(tmp_path) -> None:
    path = tmp_path / "outbox.db"
    s = open_store(path, fsync=True)
    seqs = [await s.append(make_event(i)) for i in range(10)]
    await s.mark_delivered(seqs[:4])
    s.close()
    s.close()  # idempotent

    s2 = open_store(path, fsync=True)
    try:
        assert await s2.backlog() == 6
        assert [p.seq for p in await s2.pending(100)] == seqs[4:]
        # sequence numbers continue after the old ones, never reused
        assert await s2.append(make_event(10)) > seqs[-1]
        assert (await s2.get("evt-00003")).seq == seqs[3]
    finally:
        s2.close()

    # the file is a plain WAL-mode SQLite database other tools can read
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert raw.execute("SELECT count(*) FROM events").fetchone()[0] == 11


@pytest.mark.parametrize("fsync, expected", [(True, 2), (False, 1)])  # FULL=2, NORMAL=1
async def test_synchronous_follows_fsync_flag(tmp_path, fsync: bool, expected: int) -> None:
    s = EventStore(tmp_path / "x.db", fsync=fsync)
    try:
        level = await s._run(lambda: s._db().execute("PRAGMA synchronous").fetchone()[0])
        assert level == expected
    finally:
        s.close()


async def test_duplicate_event_id_is_a_noop(store: EventStore) -> None:
    first = make_event(1)
    seq = await store.append(first)
    await store.append(make_event(2))
    # same event_id, different content: the first version stays
    again = make_event(7, status="cleared", event_id=first.event_id)
    assert await store.append(again) == seq
    assert await store.append(first) == seq
    assert await store.backlog() == 2
    stored = await store.get(first.event_id)
    assert stored is not None and stored.event["status"] == "opened"

    # a re-delivered duplicate of an already-dispatched event does not become pending again
    await store.mark_delivered([seq])
    assert await store.append(first) == seq
    assert await store.backlog() == 1


async def test_concurrent_appends_all_land(store: EventStore) -> None:
    seqs = await asyncio.gather(*(store.append(make_event(i)) for i in range(200)))
    assert len(set(seqs)) == 200
    assert await store.backlog() == 200
    assert [p.seq for p in await store.pending(500)] == sorted(seqs)


async def test_query_filters_and_order(store: EventStore) -> None:
    specs = [
        # n, status, category, grid, camera
        (0, "opened", "street-order.loitering", "330102001001", "cam-01"),
        (1, "opened", "environment.garbage", "330102001002", "cam-02"),
        (2, "updated", "street-order.loitering", "330102002001", "cam-01"),
        (3, "cleared", "street-order.loitering", "330102001001", "cam-01"),
        (4, "opened", "environment.garbage", None, "cam-03"),
        (5, "opened", "street-order.loitering", "330103001001", "cam-02"),
    ]
    seq_of = {}
    for n, status, category, grid, camera in specs:
        seq_of[n] = await store.append(
            make_event(n, status=status, category=category, grid=grid, camera=camera)
        )

    def ns(rows):
        return [r.event["source"]["media_time_s"] for r in rows]

    everything = await store.query()
    assert ns(everything) == [5, 4, 3, 2, 1, 0]  # newest first
    assert [r.seq for r in everything] == sorted(seq_of.values(), reverse=True)
    assert everything[0].event == json.loads(make_event(
        5, category="street-order.loitering", grid="330103001001", camera="cam-02"
    ).model_dump_json())

    assert ns(await store.query(status="opened")) == [5, 4, 1, 0]
    assert ns(await store.query(category="environment.garbage")) == [4, 1]
    assert ns(await store.query(camera="cam-01")) == [3, 2, 0]
    # exact grid, and a parent grid's code matching its children
    assert ns(await store.query(grid="330102001001")) == [3, 0]
    assert ns(await store.query(grid="330102001")) == [3, 1, 0]
    assert ns(await store.query(grid="330102")) == [3, 2, 1, 0]
    assert ns(await store.query(grid="9999")) == []
    # filters combine
    assert ns(await store.query(status="opened", camera="cam-02")) == [5, 1]
    assert ns(await store.query(status="opened", category="street-order.loitering",
                                grid="3301")) == [5, 0]

    # paging backwards, newest first
    page1 = await store.query(limit=2)
    assert ns(page1) == [5, 4]
    page2 = await store.query(limit=2, before_seq=page1[-1].seq)
    assert ns(page2) == [3, 2]
    assert ns(await store.query(limit=10, before_seq=page2[-1].seq)) == [1, 0]

    # SSE backfill after Last-Event-ID: oldest first
    assert ns(await store.query(after_seq=seq_of[2])) == [3, 4, 5]
    assert ns(await store.query(after_seq=seq_of[2], limit=2)) == [3, 4]
    assert ns(await store.query(after_seq=seq_of[2], status="opened")) == [4, 5]
    assert await store.query(after_seq=seq_of[5]) == []

    got = await store.get("evt-00002")
    assert got is not None and got.seq == seq_of[2] and got.event["status"] == "updated"
    assert await store.get("no-such-event") is None

    with pytest.raises(ValueError, match="limit"):
        await store.query(limit=0)


async def test_closed_store_refuses_work(tmp_path) -> None:
    s = open_store(tmp_path / "c.db", fsync=False)
    await s.append(make_event(1))
    s.close()
    with pytest.raises(StoreClosedError, match="closed"):
        await s.append(make_event(2))
    with pytest.raises(StoreClosedError):
        await s.backlog()
