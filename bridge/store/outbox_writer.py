"""Writing events to the outbox when the disk may be full: hold them in memory, write them when it can.

`OutboxWriter.append` commits an event to the outbox and calls `on_stored(seq, event, suppressed)`
(the live stream, the dispatcher). While the disk guard holds events, or after a write failed
(SQLite's "database or disk is full", an I/O error), events wait in memory, in order, up to
`disk.hold_max_events` (beyond that the oldest is dropped, counted and logged), and `flush()` — run
by the guard's loop — writes them once the outbox takes writes again. The service never stops for
a full disk; what it cannot keep is said in the log, the metrics and `/readyz`.

Held events are not durable: a process that dies while holding them loses them.
"""
from __future__ import annotations

import sqlite3
import time
from collections import deque
from collections.abc import Awaitable, Callable

import structlog

from bridge.store.disk_guard import DiskGuard
from bridge.events.model import Event
from bridge.bridge_metrics import EVENTS_DROPPED, EVENTS_HELD
from bridge.store.outbox import EventStore

log = structlog.get_logger(__name__)

Stored = Callable[[int, Event, "str | None"], Awaitable[None]]
_WRITE_ERRORS = (sqlite3.OperationalError, sqlite3.DatabaseError, OSError)
_PROBE = "CREATE TABLE IF NOT EXISTS write_probe (id INTEGER PRIMARY KEY, at REAL NOT NULL)"


class OutboxWriter:
    def __init__(self, store: EventStore, guard: DiskGuard, hold_max: int, on_stored: Stored) -> None:
        self.store, self.guard, self.hold_max, self.on_stored = store, guard, hold_max, on_stored
        self.held: deque[tuple[Event, str | None]] = deque()
        self.dropped = 0
        self.write_error: str | None = None  # the last failed write, until a write succeeds

    @property
    def writable(self) -> bool:
        return self.write_error is None

    async def append(self, event: Event, suppressed: str | None = None) -> int | None:
        """Commit `event` and hand it on; returns its seq, or None when it is held for later."""
        if self.held or self.guard.events_held:  # behind the held ones: order is kept
            self._hold(event, suppressed)
            return None
        try:
            seq = await self.store.append(event, suppressed)
        except _WRITE_ERRORS as exc:
            self._failed(exc)
            self._hold(event, suppressed)
            return None
        self._ok()
        await self.on_stored(seq, event, suppressed)
        return seq

    async def flush(self) -> int:
        """Write held events, oldest first, while the outbox takes them; returns how many were written."""
        written = 0
        while self.held and not self.guard.events_held:
            event, suppressed = self.held[0]
            try:
                seq = await self.store.append(event, suppressed)
            except _WRITE_ERRORS as exc:
                self._failed(exc)
                break
            self.held.popleft()
            EVENTS_HELD.set(len(self.held))
            self._ok()
            written += 1
            await self.on_stored(seq, event, suppressed)
        if written:
            log.info("outbox.held_written", written=written, still_held=len(self.held))
        return written

    async def probe(self) -> bool:
        """Try a one-row write, so `/readyz` knows the outbox takes writes even when no event comes."""
        try:
            await self.store.on_connection(_probe)
        except _WRITE_ERRORS as exc:
            self._failed(exc)
            return False
        self._ok()
        return True

    def _hold(self, event: Event, suppressed: str | None) -> None:
        if len(self.held) >= self.hold_max:
            if not self.held:  # nothing may be held at all
                self._drop(event)
                return
            self._drop(self.held.popleft()[0])
        self.held.append((event, suppressed))
        EVENTS_HELD.set(len(self.held))

    def _drop(self, event: Event) -> None:
        self.dropped += 1
        EVENTS_DROPPED.inc()
        log.error("outbox.event_dropped", event_id=event.event_id, incident=event.incident_id, status=event.status,
                  hold_max_events=self.hold_max, note="the outbox cannot be written and the hold is full")

    def _failed(self, exc: BaseException) -> None:
        if self.write_error is None:
            log.error("outbox.write_failed", error=repr(exc), path=str(self.store.path),
                      note="events are held in memory and written when the outbox takes writes again")
        self.write_error = repr(exc)
        self.guard.tripped("events", exc)

    def _ok(self) -> None:
        if self.write_error is not None:
            log.info("outbox.writable_again", path=str(self.store.path), held=len(self.held))
            self.write_error = None


def _probe(db: sqlite3.Connection) -> None:
    db.execute(_PROBE)
    db.execute("INSERT OR REPLACE INTO write_probe (id, at) VALUES (1, ?)", (time.time(),))
