"""The durable outbox: every event is committed to one SQLite file (WAL mode) before Kafka sees it.

Every event is written here first, committed, and only then handed to Kafka: an event the
service has accepted survives a crash, a restart or a broker outage. The dispatcher reads the
undelivered rows in `seq` order and marks them delivered once Kafka acknowledged them. The same
file holds the event log the API reads (bridge.store.event_log), the suppression windows
(bridge.store.suppressions) and the parked records (bridge.store.parked_records).

sqlite3 blocks, so all access goes through one dedicated worker thread that owns the
connection. Every statement is a plain function on that connection; `await store.run(fn, ...)`
runs one on the thread, in turn with all else (one thread: the statements run one at a time, in
the order they were submitted). The outbox's own writes also keep the backlog gauge exact.
"""
from __future__ import annotations

import asyncio
import functools
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

import structlog

from bridge.events.model import Event, record_headers
from bridge.bridge_metrics import OUTBOX_BACKLOG
from bridge.store import event_log
from bridge.store.event_log import StoredEvent
from bridge.store.suppressions import SCHEMA as SUPPRESSIONS_SCHEMA, live_suppressions, save_suppressions
from bridge.store.sqlite_files import claim, connect_wal, write_transaction

log = structlog.get_logger(__name__)

T = TypeVar("T")
P = ParamSpec("P")

#: Version of the table layout below, kept in `PRAGMA user_version`.
STORE_SCHEMA_VERSION = 2  # 2: `suppressed` rows and the `suppressions` table

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id       TEXT    NOT NULL UNIQUE,
    incident_id    TEXT    NOT NULL,
    status         TEXT    NOT NULL,
    category       TEXT    NOT NULL,
    grid           TEXT,
    camera_id      TEXT,
    occurred_at    TEXT    NOT NULL,
    created_at     REAL    NOT NULL,
    key            TEXT    NOT NULL,
    schema_version INTEGER NOT NULL,
    payload        TEXT    NOT NULL,
    delivered_at   REAL,
    suppressed     TEXT  -- why it is kept but not sent (the platform closed the work order)
);
CREATE INDEX IF NOT EXISTS events_pending  ON events(seq) WHERE delivered_at IS NULL AND suppressed IS NULL;
CREATE INDEX IF NOT EXISTS events_status   ON events(status, seq);
CREATE INDEX IF NOT EXISTS events_category ON events(category, seq);
CREATE INDEX IF NOT EXISTS events_grid     ON events(grid, seq);
CREATE INDEX IF NOT EXISTS events_camera   ON events(camera_id, seq);
CREATE INDEX IF NOT EXISTS events_incident ON events(incident_id, seq);
""" + SUPPRESSIONS_SCHEMA

_PENDING = "delivered_at IS NULL AND suppressed IS NULL"

# Rows per UPDATE in mark_delivered, well below SQLite's bound-parameter limit.
_MARK_CHUNK = 500

__all__ = ["EventStore", "PendingRecord", "StoreClosedError", "StoredEvent", "open_store"]


@dataclass(frozen=True, slots=True)
class PendingRecord:
    """One undelivered outbox row, ready to be produced to Kafka."""

    seq: int
    key: str
    payload: bytes
    headers: list[tuple[str, bytes]]


class StoreClosedError(RuntimeError):
    """The EventStore was used after close()."""


# ---------------------------------------------------------------- the outbox's statements

def _insert(db: sqlite3.Connection, event: Event, suppressed: str | None) -> tuple[int, int]:
    """Insert one event; returns its seq and 1 when it added a pending row (0: a duplicate or suppressed)."""
    cur = db.execute(
        """
        INSERT INTO events (event_id, incident_id, status, category, grid, camera_id,
                            occurred_at, created_at, key, schema_version, payload, suppressed)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT(event_id) DO NOTHING
        """,
        (
            event.event_id,
            event.incident_id,
            event.status,
            event.category.code,
            event.grid.code if event.grid else None,
            event.source.camera_id,
            event.occurred_at.isoformat(),
            time.time(),
            event.key,
            event.schema_version,
            event.model_dump_json(),
            suppressed,
        ),
    )
    if cur.rowcount == 1:
        return int(cur.lastrowid), int(suppressed is None)
    row = db.execute("SELECT seq FROM events WHERE event_id = ?", (event.event_id,)).fetchone()
    if row is None:  # the INSERT was ignored, so the row must exist
        raise RuntimeError(f"event {event.event_id}: insert ignored but no row found")
    log.debug("duplicate event ignored", event_id=event.event_id, seq=row[0])
    return int(row[0]), 0


def insert_events(db: sqlite3.Connection, events: list[Event], suppressed: str | None = None) -> tuple[list[int], int]:
    """Insert events (several: in one transaction, one fsync for the whole batch instead of one per
    event); returns their seqs and how many pending rows they added."""
    if len(events) == 1:  # autocommit: a single INSERT is its own transaction
        seq, added = _insert(db, events[0], suppressed)
        return [seq], added
    with write_transaction(db):
        done = [_insert(db, e, suppressed) for e in events]
    return [seq for seq, _ in done], sum(added for _, added in done)


def pending_records(db: sqlite3.Connection, limit: int = 500) -> list[PendingRecord]:
    """Up to `limit` undelivered rows, oldest (lowest `seq`) first."""
    if limit < 1:
        raise ValueError(f"pending(limit={limit}): limit must be at least 1")
    rows = db.execute(
        f"SELECT seq, key, payload, category, grid, schema_version FROM events WHERE {_PENDING} "
        "ORDER BY seq LIMIT ?", (limit,)).fetchall()
    return [PendingRecord(seq=seq, key=key, payload=payload.encode("utf-8"),
                          headers=record_headers(schema_version, category, grid))
            for seq, key, payload, category, grid, schema_version in rows]


def mark_rows_delivered(db: sqlite3.Connection, seqs: list[int]) -> tuple[int, int]:
    """Mark rows delivered in one transaction; returns how many were still pending, and the change
    in pending rows (minus that)."""
    now, changed = time.time(), 0
    with write_transaction(db):
        for i in range(0, len(seqs), _MARK_CHUNK):
            chunk = seqs[i : i + _MARK_CHUNK]
            changed += db.execute(f"UPDATE events SET delivered_at = ? WHERE seq IN ({','.join('?' * len(chunk))}) "
                                  f"AND {_PENDING}", (now, *chunk)).rowcount
    return changed, -changed


def _on_store_thread(fn: Callable[Concatenate[sqlite3.Connection, P], T]) -> Callable[..., Awaitable[T]]:
    """An EventStore coroutine method that runs `fn(connection, ...)` on the store's thread: how the
    store offers a query of the event log or the suppressions without a second copy of its body."""
    @functools.wraps(fn)
    async def method(store: EventStore, *args: Any, **kwargs: Any) -> T:
        return await store.run(fn, *args, **kwargs)
    return method


class EventStore:
    """Durable outbox and event log in one SQLite file.

    `fsync=True` sets `synchronous=FULL`: a commit survives power loss, not only a crash of the
    process. With `fsync=False` (`synchronous=NORMAL`, the WAL default) a commit survives a crash
    of the process but the last transactions may be lost on power loss.
    """

    def __init__(self, path: str | Path, fsync: bool = False) -> None:
        self.path = Path(path)
        self.fsync = fsync
        self._conn: sqlite3.Connection | None = None
        self._closed = False
        self._close_lock = threading.Lock()
        self._owner = None  # two processes sending one outbox would both deliver every row
        if str(self.path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._owner = claim(self.path, "event store",
                                "give each service or cluster worker its own `outbox.path` (or `data_dir`)")
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="event-store")
        try:
            self._executor.submit(self._open).result()
        except BaseException:
            self._executor.shutdown(wait=True)
            self._release()
            raise

    # ---------------------------------------------------------------- worker-thread side

    def _open(self) -> None:
        # isolation_level=None: autocommit, every statement is its own transaction unless an
        # explicit BEGIN opens one. A single INSERT is therefore committed when execute() returns.
        conn = connect_wal(self.path, "event store", isolation_level=None)
        try:
            conn.execute(f"PRAGMA synchronous={'FULL' if self.fsync else 'NORMAL'}")
            conn.execute("PRAGMA foreign_keys=ON")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version == 1:  # add what layout 2 has; no row changes
                conn.execute("ALTER TABLE events ADD COLUMN suppressed TEXT")
                conn.execute("DROP INDEX IF EXISTS events_pending")
            elif version not in (0, STORE_SCHEMA_VERSION):
                raise RuntimeError(
                    f"event store {self.path} has layout version {version}, this code knows "
                    f"version {STORE_SCHEMA_VERSION}; refusing to touch it"
                )
            conn.executescript(_SCHEMA)
            conn.execute(f"PRAGMA user_version={STORE_SCHEMA_VERSION}")
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        # Kept in step by every append and mark, so the backlog gauge is exact at any moment,
        # also during an outage when the dispatcher only looks between backoff waits.
        self._recount()
        log.info("event store opened", path=str(self.path), fsync=self.fsync,
                 backlog=self._pending_n)

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreClosedError(f"event store {self.path} is closed")
        return self._conn

    def _recount(self) -> int:  # also re-syncs the count: rows parked or re-sent elsewhere
        self._pending_n = int(self._db().execute(f"SELECT count(*) FROM events WHERE {_PENDING}").fetchone()[0])
        OUTBOX_BACKLOG.set(self._pending_n)
        return self._pending_n

    def _counted(self, fn: Callable[..., tuple[T, int]], *args: Any) -> T:
        """`fn(connection, *args)`, which returns (result, change in pending rows): moves the backlog gauge."""
        result, change = fn(self._db(), *args)
        if change:
            self._pending_n += change
            OUTBOX_BACKLOG.set(self._pending_n)
        return result

    def _close_conn(self) -> None:
        if self._conn is not None:
            try:
                # Fold the WAL back into the main file so the store is one file at rest.
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error as exc:
                log.warning("event store checkpoint on close failed", path=str(self.path),
                            error=repr(exc))
            self._conn.close()
            self._conn = None

    # ---------------------------------------------------------------- event-loop side

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` on the store's thread, in turn with all else."""
        if self._closed:
            raise StoreClosedError(f"event store {self.path} is closed")
        try:
            fut = self._executor.submit(fn, *args)
        except RuntimeError as exc:  # close() shut the executor down after the check above
            raise StoreClosedError(f"event store {self.path} is closed") from exc
        return await asyncio.wrap_future(fut)

    async def run(self, fn: Callable[Concatenate[sqlite3.Connection, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        """`fn(connection, *args, **kwargs)` on the store's thread, in turn with all else: any query
        of bridge.store.event_log or bridge.store.suppressions, or one of the caller's own."""
        return await self._run(lambda: fn(self._db(), *args, **kwargs))

    async def append(self, event: Event, suppressed: str | None = None) -> int:
        """Store `event`, committed before this returns; returns its `seq`.

        Appending an `event_id` that is already stored changes nothing and returns the
        existing row's `seq`. With `suppressed` (the reason) the event is kept and queryable
        but never sent to Kafka and not counted in the backlog.
        """
        return (await self._run(self._counted, insert_events, [event], suppressed))[0]

    async def append_many(self, events: Iterable[Event]) -> list[int]:
        """Store several events in one transaction (all or none), committed before this
        returns; returns their `seq`s in order. Same duplicate rule as append()."""
        events = list(events)
        return await self._run(self._counted, insert_events, events) if events else []

    async def mark_delivered(self, seqs: Iterable[int]) -> int:
        """Mark rows delivered in one transaction; returns how many were still pending."""
        seqs = list(seqs)
        return await self._run(self._counted, mark_rows_delivered, seqs) if seqs else 0

    async def backlog(self) -> int:
        """Number of undelivered rows."""
        return await self._run(self._recount)

    async def on_connection(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """`fn(connection)` on the store's thread, in turn with all else (bridge.store.parked_records,
        outbox_writer); the backlog is counted again after it."""
        return await self._run(lambda: (fn(self._db()), self._recount())[0])

    # The outbox's read and the event log's queries and suppression windows, under the names callers
    # use: each one body, in its module, run on the store's thread.
    pending = _on_store_thread(pending_records)
    query = _on_store_thread(event_log.query_events)
    get = _on_store_thread(event_log.get_event)
    latest_of_incident = _on_store_thread(event_log.latest_of_incident)
    incident = _on_store_thread(event_log.incident_events)
    suppress = _on_store_thread(save_suppressions)
    suppressions = _on_store_thread(live_suppressions)

    def close(self) -> None:
        """Finish queued work, checkpoint and close the database. Safe to call twice."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        try:
            self._executor.submit(self._close_conn).result()
        finally:
            self._executor.shutdown(wait=True)
            self._release()
        log.info("event store closed", path=str(self.path))

    def _release(self) -> None:
        if self._owner is not None:
            self._owner.close()
            self._owner = None

    def __enter__(self) -> EventStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_store(path: str | Path, fsync: bool = False) -> EventStore:
    """Open (creating if needed) the event store at `path`."""
    return EventStore(path, fsync=fsync)
