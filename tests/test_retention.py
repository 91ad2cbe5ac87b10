"""Retention (bridge.store.retention): every store bounded by age and size, never what is still owed."""
from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path

from bridge.store.audit import ConsoleDb
from bridge.store.dead_letters import DeadLetter, DeadLetterStore
from bridge.events.model import Event
from bridge.store.outbox import EventStore
from bridge.store.parked_records import park_row
from bridge.reliability_config import RetentionConfig, StoreRetention
from bridge.store.retention import Retention
from bridge.store.outbox_retention import used_bytes
from tests.test_dispatch import make_event

DAY = 86400.0
GRID = "330102001001"


def with_evidence(n: int, incident: str, status: str, evidence_dir: Path) -> tuple[Event, str]:
    name = f"{uuid.uuid4().hex}.jpg"
    (evidence_dir / name).write_bytes(os.urandom(2000))
    ev = make_event(GRID, n).model_copy(update={"incident_id": incident, "status": status,
                                                "event_id": f"evt-{incident}-{n}"})
    ev = ev.model_copy(update={"evidence": ev.evidence.model_copy(update={"snapshot": f"/evidence/{name}"})})
    return ev, name


def config(**stores: StoreRetention) -> RetentionConfig:
    none = StoreRetention(max_age_s=None, max_bytes=None)
    base = {k: none for k in ("outbox", "evidence", "deadletters", "audit", "console")}
    return RetentionConfig(**(base | stores), min_file_age_s=0)


async def test_age_removes_what_is_done_and_keeps_what_is_owed(tmp_path: Path) -> None:
    ev_dir = tmp_path / "evidence"
    ev_dir.mkdir()
    store = EventStore(tmp_path / "outbox.sqlite3")
    try:
        closed = [with_evidence(0, "closed", "opened", ev_dir), with_evidence(1, "closed", "cleared", ev_dir)]
        still_open = [with_evidence(2, "open", "opened", ev_dir), with_evidence(3, "open", "updated", ev_dir)]
        verified_open = [with_evidence(4, "open2", "opened", ev_dir), with_evidence(5, "open2", "verified", ev_dir)]
        undelivered = [with_evidence(6, "late", "opened", ev_dir), with_evidence(7, "late", "cleared", ev_dir)]
        parked = [with_evidence(8, "poison", "opened", ev_dir), with_evidence(9, "poison", "cleared", ev_dir)]
        orphan = f"{uuid.uuid4().hex}.mp4"
        (ev_dir / orphan).write_bytes(b"old clip")
        seqs = {}
        for ev, _ in closed + still_open + verified_open + undelivered + parked:
            seqs[ev.event_id] = await store.append(ev)
        done = [seqs[e.event_id] for e, _ in closed + still_open + verified_open]
        await store.mark_delivered(done + [seqs[parked[0][0].event_id]])
        await store.on_connection(lambda db: park_row(db, seqs[parked[1][0].event_id], "MessageSizeTooLargeError()", 3))

        later = time.time() + 31 * DAY  # everything is 31 days old then
        ret = Retention(config(outbox=StoreRetention(max_age_s=30 * DAY, max_bytes=None),
                               evidence=StoreRetention(max_age_s=30 * DAY, max_bytes=None)),
                        store, ev_dir, tmp_path / "none.sqlite3", tmp_path / "none2.sqlite3")
        removed = await ret.run_once(now=later)

        left = {e["event_id"] for e in (await store.query(limit=100)) for e in [e.event]}
        gone = {e.event_id for e, _ in closed}
        assert left == {e.event_id for e, _ in still_open + verified_open + undelivered + parked}
        assert removed["outbox"] == {"age": 2, "size": 0}
        files = {p.name for p in ev_dir.iterdir()}
        assert files == {name for _, name in still_open + verified_open + undelivered + parked}
        assert removed["evidence"] == {"age": 3, "size": 0}  # the closed incident's two files and the orphan
        assert not gone & left

        # The open incident clears (delivered): the next run, which looks only at what changed, removes it.
        clear, clear_file = with_evidence(10, "open", "cleared", ev_dir)
        await store.mark_delivered([await store.append(clear)])
        removed = await ret.run_once(now=later + 31 * DAY)
        assert removed["outbox"]["age"] == 3 and removed["evidence"]["age"] == 3
        left = {e.event["incident_id"] for e in await store.query(limit=100)}
        assert left == {"open2", "late", "poison"}
    finally:
        store.close()


async def test_size_removes_oldest_done_events_and_files(tmp_path: Path) -> None:
    ev_dir = tmp_path / "evidence"
    ev_dir.mkdir()
    store = EventStore(tmp_path / "outbox.sqlite3")
    try:
        pairs = [with_evidence(n, f"inc-{n}", "cleared", ev_dir) for n in range(300)]
        seqs = [await store.append(e) for e, _ in pairs]
        await store.mark_delivered(seqs[:250])  # the last 50 are still owed
        full = await store.on_connection(used_bytes)
        ret = Retention(config(outbox=StoreRetention(max_age_s=None, max_bytes=full // 2),
                               evidence=StoreRetention(max_age_s=None, max_bytes=100 * 2000)),
                        store, ev_dir, tmp_path / "x.sqlite3", tmp_path / "y.sqlite3")
        removed = await ret.run_once()
        assert removed["outbox"]["size"] > 0 and await store.on_connection(used_bytes) <= full // 2
        left = sorted(e.seq for e in await store.query(limit=1000))
        assert left == list(range(left[0], 301)), "the oldest go first"
        assert await store.backlog() == 50
        names = {p.name for p in ev_dir.iterdir()}
        owed = {name for _, name in pairs[250:]}
        assert owed <= names  # files of undelivered events stay, even over the size
        assert len(names) == 100 and names == {name for _, name in pairs[200:]}
    finally:
        store.close()


async def test_dead_letters_audit_and_console_versions(tmp_path: Path) -> None:
    dl = DeadLetterStore(tmp_path / "deadletters.sqlite3")
    now = time.time()
    await dl.add([DeadLetter(now - 20 * DAY, "t", "s1", "not_json", "x", os.urandom(4000)) for _ in range(10)])
    await dl.add([DeadLetter(now - DAY, "t", "s1", "not_json", "x", os.urandom(4000)) for _ in range(300)])
    dl.close()
    console = ConsoleDb(tmp_path / "console.sqlite3")
    for i in range(5):
        console.record("alice", "camera.save", "table", {"i": i})
        console.save_version("table", {"v": i}, "alice")
    console.save_version("gate", {"v": 0}, "bob")
    store = EventStore(tmp_path / "outbox.sqlite3")
    try:
        ret = Retention(config(deadletters=StoreRetention(max_age_s=14 * DAY, max_bytes=600_000),
                               audit=StoreRetention(max_age_s=DAY, max_bytes=None),
                               console=StoreRetention(max_age_s=DAY, max_bytes=None)),
                        store, tmp_path / "evidence", tmp_path / "deadletters.sqlite3", tmp_path / "console.sqlite3")
        removed = await ret.run_once(now=now + 2 * DAY)  # audit entries and versions are 2 days old then
    finally:
        store.close()
    assert removed["deadletters"]["age"] == 10 and removed["deadletters"]["size"] > 0
    dl = DeadLetterStore(tmp_path / "deadletters.sqlite3")
    rows = await dl.query(limit=1000)
    assert 0 < len(rows) < 300 and min(r["received_at"] for r in rows) > now - 2 * DAY
    assert (await dl.counts())["not_json"] == 310  # counts by reason are history, not rows
    dl.close()
    assert removed["audit"]["age"] == 5 and console.entries() == []
    assert [v.version for v in console.versions("table")] == [5]  # each camera's newest version stays
    assert [v.config for v in console.versions("gate")] == [{"v": 0}]
    assert json.dumps(removed)
