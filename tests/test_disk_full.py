"""A full disk, for real: an 8 MiB tmpfs filled to the brim under the outbox and the evidence.

The service keeps running: evidence is refused first (events go out without it), then events are
held in memory, `/readyz` says why, and everything resumes by itself, in order, when space returns.
Needs root (mount); skipped with the reason otherwise.
"""
from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from bridge.store.disk_guard import NO_EVENTS, NO_EVIDENCE, OK, DiskGuard, GuardedEvidenceStore, free_bytes
from bridge.events.evidence_store import LocalEvidenceStore
from bridge.store.outbox import EventStore
from bridge.store.outbox_writer import OutboxWriter
from bridge.http.readiness import Readiness
from bridge.reliability_config import DiskGuardConfig, ReadinessConfig
from tests.test_dispatch import make_event, metric

MIB = 1024 * 1024
GRID = "330102001001"


@pytest.fixture
def small_fs(tmp_path: Path):
    mnt = tmp_path / "fs"
    mnt.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a size-limited tmpfs here (needs root): {res.stderr.strip()}")
    try:
        yield mnt
    finally:
        if subprocess.run(["umount", str(mnt)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mnt)], check=True)


def fill(path: Path, leave_free: int = 0) -> None:
    """Write `path` until the filesystem has `leave_free` bytes left (0: until ENOSPC, to the brim)."""
    chunk = b"\0" * 65536
    try:
        f = open(path, "ab", buffering=0)  # unbuffered: nothing left to flush (and fail) at close
    except OSError as exc:  # already full (a busy writer got there first)
        assert exc.errno == errno.ENOSPC, exc
        return
    with f:
        while True:
            room = free_bytes(path.parent) - leave_free
            if leave_free and room <= 0:
                return
            try:
                f.write(chunk[: max(1, min(len(chunk), room))] if leave_free else chunk)
                f.flush()
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
                return


def refusals(reason: str) -> float:
    return REGISTRY.get_sample_value("xueliang_evidence_refused_total", {"reason": reason}) or 0.0


class Sink:
    """What the service does with a stored event (live stream, dispatcher): here, remember it."""

    def __init__(self) -> None:
        self.stored: list[tuple[int, str]] = []

    async def __call__(self, seq, event, suppressed) -> None:
        self.stored.append((seq, event.event_id))


async def test_full_disk_refuses_evidence_then_holds_events_and_resumes(small_fs: Path) -> None:
    cfg = DiskGuardConfig(evidence_min_free_bytes=3 * MIB, events_min_free_bytes=1 * MIB, hold_max_events=1000)
    store = EventStore(small_fs / "outbox.sqlite3", fsync=True)
    guard = DiskGuard(cfg, small_fs, small_fs / "evidence")
    evidence = GuardedEvidenceStore(LocalEvidenceStore(small_fs / "evidence"), guard)
    sink = Sink()
    writer = OutboxWriter(store, guard, cfg.hold_max_events, sink)
    ready = Readiness(ReadinessConfig(), started=lambda: True, writer=writer, guard=guard)
    jpeg = os.urandom(200_000)
    try:
        assert guard.check() == OK and ready.reasons() == []
        assert evidence.put(jpeg, "jpg") is not None
        events = [make_event(GRID, n) for n in range(30)]
        for e in events[:10]:
            assert await writer.append(e) is not None

        fill(small_fs / "filler-1", leave_free=2 * MIB)  # between the two thresholds
        refused = refusals("disk_guard")
        assert guard.check() == NO_EVIDENCE
        assert evidence.put(jpeg, "jpg") is None  # no evidence, but the event still goes in
        assert refusals("disk_guard") == refused + 1
        for e in events[10:15]:
            assert await writer.append(e) is not None
        assert any("evidence_refused" in r for r in ready.reasons())

        fill(small_fs / "filler-2")  # to the brim
        assert free_bytes(small_fs) < MIB
        assert guard.check() == NO_EVENTS
        for e in events[15:25]:
            assert await writer.append(e) is None  # held in memory, in order
        assert len(writer.held) == 10 and metric("xueliang_outbox_held") == 10
        assert metric("xueliang_disk_guard_level") == NO_EVENTS
        reasons = ready.reasons()
        assert any("events_held" in r for r in reasons) and any("10 events held" in r for r in reasons), reasons
        assert await writer.flush() == 0  # still full: nothing written, nothing lost

        (small_fs / "filler-1").unlink()
        (small_fs / "filler-2").unlink()  # space returns
        assert guard.check() == OK
        assert await writer.flush() == 10
        for e in events[25:]:
            assert await writer.append(e) is not None
        assert evidence.put(jpeg, "jpg") is not None
        assert ready.reasons() == []
        assert [eid for _, eid in sink.stored] == [e.event_id for e in events]  # every event, in order
        seqs = [s for s, _ in sink.stored]
        assert seqs == sorted(seqs) and await store.backlog() == 30
        assert not list((small_fs / "evidence").glob(".*.part"))
    finally:
        store.close()


async def test_write_failing_for_want_of_space_holds_events_and_says_outbox_not_writable(small_fs: Path) -> None:
    """Thresholds at zero: the guard never trips on free space, so SQLite itself hits the full disk."""
    cfg = DiskGuardConfig(evidence_min_free_bytes=0, events_min_free_bytes=0)
    store = EventStore(small_fs / "outbox.sqlite3", fsync=True)
    guard = DiskGuard(cfg, small_fs, small_fs / "evidence")
    evidence = GuardedEvidenceStore(LocalEvidenceStore(small_fs / "evidence"), guard)
    sink = Sink()
    writer = OutboxWriter(store, guard, 1000, sink)
    ready = Readiness(ReadinessConfig(), started=lambda: True, writer=writer, guard=guard)
    try:
        fill(small_fs / "filler")
        assert evidence.put(os.urandom(100_000), "jpg") is None  # ENOSPC: refused, no exception, no .part left
        assert refusals("write_failed") >= 1
        assert not list((small_fs / "evidence").glob(".*.part"))
        events = [make_event(GRID, n) for n in range(400)]
        held_from = None
        for i, e in enumerate(events):
            if await writer.append(e) is None and held_from is None:
                held_from = i
        assert held_from is not None, "400 events fitted on a full 8 MiB disk?"
        assert writer.write_error is not None and "full" in writer.write_error.lower()
        assert any(r.startswith("outbox cannot be written") for r in ready.reasons())
        assert not await writer.probe()

        (small_fs / "filler").unlink()
        guard.check()
        assert await writer.flush() == len(events) - held_from
        assert await writer.probe() and ready.reasons() == []
        assert [eid for _, eid in sink.stored] == [e.event_id for e in events]
    finally:
        store.close()


async def test_dead_letters_on_a_full_disk_are_logged_not_fatal(small_fs: Path) -> None:
    """Rejected sensor messages whose payloads cannot be stored must not stop the sensor task."""
    from types import SimpleNamespace

    from bridge.store.dead_letters import DeadLetterStore
    from ingest.sensor_decode import Rejected
    from bridge.sensor_feed import SensorRuntime

    store = DeadLetterStore(small_fs / "deadletters.sqlite3")
    try:
        fill(small_fs / "filler")
        runtime = SimpleNamespace(deadletters=store, rejected=0)
        dead = [Rejected("not_json", "x", "sensors/s1", "s1", os.urandom(60_000), float(i)) for i in range(50)]
        await SensorRuntime._reject(runtime, dead)  # would raise "database or disk is full" unguarded
        assert runtime.rejected == 50
        (small_fs / "filler").unlink()
        await SensorRuntime._reject(runtime, dead[:1])
        assert len(await store.query()) == 1  # stored again once there is room
    finally:
        store.close()
