"""The durable outbox and the queryable event log: one SQLite file in WAL mode.

Every event is written here first, committed, and only then handed to Kafka: an event the
service has accepted survives a crash, a restart or a broker outage. The dispatcher reads the
undelivered rows in `seq` order and marks them delivered once Kafka acknowledged them; the HTTP
API reads the same table to list and filter events.

sqlite3 blocks, so all access goes through one dedicated worker thread that owns the
connection; the public methods are coroutines that hand their work to that thread. One thread
also means the statements run one at a time, in the order they were submitted.
"""
from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import structlog

from bridge.events.model import Event, record_headers
from bridge.bridge_metrics import OUTBOX_BACKLOG
from bridge.store.sqlite_files import claim, connect_wal

log = structlog.get_logger(__name__)

T = TypeVar("T")

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
CREATE TABLE IF NOT EXISTS suppressions (
    key         TEXT PRIMARY KEY,  -- JSON of (source, zone, rule, category)
    until       REAL NOT NULL,     -- Unix time
    incident_id TEXT NOT NULL,
    created_at  REAL NOT NULL
);
"""

_PENDING = "delivered_at IS NULL AND suppressed IS NULL"

# Upper bound for a grid-prefix range scan: sorts after any string that starts with the prefix.
_PREFIX_END = "\U0010ffff"

# Rows per UPDATE in mark_delivered, well below SQLite's bound-parameter limit.
_MARK_CHUNK = 500


@dataclass(frozen=True, slots=True)
class PendingRecord:
    """One undelivered outbox row, ready to be produced to Kafka."""

    seq: int
    key: str
    payload: bytes
    headers: list[tuple[str, bytes]]


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One row of the event log: its position and the event as parsed JSON."""

    seq: int
    event: dict[str, Any]
    suppressed: str | None = None  # why it was kept back from Kafka, if it was


class StoreClosedError(RuntimeError):
    """The EventStore was used after close()."""


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
        self._pending_n = int(conn.execute(
            f"SELECT count(*) FROM events WHERE {_PENDING}").fetchone()[0])
        OUTBOX_BACKLOG.set(self._pending_n)
        log.info("event store opened", path=str(self.path), fsync=self.fsync,
                 backlog=self._pending_n)

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreClosedError(f"event store {self.path} is closed")
        return self._conn

    def _append(self, event: Event, suppressed: str | None = None) -> int:
        db = self._db()
        payload = event.model_dump_json()
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
                payload,
                suppressed,
            ),
        )
        if cur.rowcount == 1 and suppressed is not None:
            return int(cur.lastrowid)
        if cur.rowcount == 1:
            self._pending_n += 1
            if not db.in_transaction:  # in append_many the gauge moves after COMMIT
                OUTBOX_BACKLOG.set(self._pending_n)
            return int(cur.lastrowid)
        row = db.execute("SELECT seq FROM events WHERE event_id = ?", (event.event_id,)).fetchone()
        if row is None:  # the INSERT was ignored, so the row must exist
            raise RuntimeError(f"event {event.event_id}: insert ignored but no row found")
        log.debug("duplicate event ignored", event_id=event.event_id, seq=row[0])
        return int(row[0])

    def _append_many(self, events: list[Event]) -> list[int]:
        # One transaction: one fsync for the whole batch instead of one per event.
        db = self._db()
        before = self._pending_n
        db.execute("BEGIN IMMEDIATE")
        try:
            seqs = [self._append(e) for e in events]
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            self._pending_n = before
            raise
        OUTBOX_BACKLOG.set(self._pending_n)
        return seqs

    def _pending(self, limit: int) -> list[PendingRecord]:
        rows = self._db().execute(
            """
            SELECT seq, key, payload, category, grid, schema_version
            FROM events WHERE delivered_at IS NULL AND suppressed IS NULL ORDER BY seq LIMIT ?
            """,
            (limit,),
        ).fetchall()
        return [
            PendingRecord(
                seq=seq,
                key=key,
                payload=payload.encode("utf-8"),
                headers=record_headers(schema_version, category, grid),
            )
            for seq, key, payload, category, grid, schema_version in rows
        ]

    def _mark_delivered(self, seqs: list[int]) -> int:
        db = self._db()
        now = time.time()
        changed = 0
        db.execute("BEGIN IMMEDIATE")
        try:
            for i in range(0, len(seqs), _MARK_CHUNK):
                chunk = seqs[i : i + _MARK_CHUNK]
                marks = ",".join("?" * len(chunk))
                cur = db.execute(
                    f"UPDATE events SET delivered_at = ? "
                    f"WHERE seq IN ({marks}) AND {_PENDING}",
                    (now, *chunk),
                )
                changed += cur.rowcount
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self._pending_n -= changed
        OUTBOX_BACKLOG.set(self._pending_n)
        return changed

    def _backlog(self) -> int:  # also re-syncs the count: rows parked or re-sent elsewhere
        self._pending_n = int(self._db().execute(f"SELECT count(*) FROM events WHERE {_PENDING}").fetchone()[0])
        OUTBOX_BACKLOG.set(self._pending_n)
        return self._pending_n

    def _query(
        self,
        status: str | None,
        category: str | None,
        grid: str | None,
        camera: str | None,
        limit: int,
        before_seq: int | None,
        after_seq: int | None,
    ) -> list[StoredEvent]:
        where: list[str] = []
        args: list[Any] = []
        if status is not None:
            where.append("status = ?")
            args.append(status)
        if category is not None:
            where.append("category = ?")
            args.append(category)
        if grid is not None:
            # A grid code is a prefix of all its children's codes: filtering by a street's
            # grid returns its communities' events too. A range keeps the index usable.
            where.append("grid >= ? AND grid < ?")
            args += [grid, grid + _PREFIX_END]
        if camera is not None:
            where.append("camera_id = ?")
            args.append(camera)
        if before_seq is not None:
            where.append("seq < ?")
            args.append(before_seq)
        if after_seq is not None:
            where.append("seq > ?")
            args.append(after_seq)
        order = "ASC" if after_seq is not None else "DESC"
        sql = "SELECT seq, payload, suppressed FROM events"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY seq {order} LIMIT ?"
        args.append(limit)
        rows = self._db().execute(sql, args).fetchall()
        return [StoredEvent(seq, json.loads(payload), sup) for seq, payload, sup in rows]

    def _get(self, event_id: str) -> StoredEvent | None:
        row = self._db().execute(
            "SELECT seq, payload, suppressed FROM events WHERE event_id = ?", (event_id,)
        ).fetchone()
        return None if row is None else StoredEvent(row[0], json.loads(row[1]), row[2])

    def _latest_of_incident(self, incident_id: str) -> StoredEvent | None:
        row = self._db().execute(
            "SELECT seq, payload, suppressed FROM events WHERE incident_id = ? AND status NOT IN ('verified', 'reviewed') "
            "ORDER BY seq DESC LIMIT 1", (incident_id,)
        ).fetchone()
        return None if row is None else StoredEvent(row[0], json.loads(row[1]), row[2])

    def _suppress(self, keys: list[str], until: float, incident_id: str) -> None:
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            for key in keys:  # a later, longer window wins; a shorter one never shortens it
                db.execute(
                    "INSERT INTO suppressions (key, until, incident_id, created_at) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT(key) DO UPDATE SET until = max(until, excluded.until), "
                    "incident_id = excluded.incident_id, created_at = excluded.created_at",
                    (key, until, incident_id, time.time()))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _suppressions(self, now: float) -> dict[str, float]:
        db = self._db()
        db.execute("DELETE FROM suppressions WHERE until <= ?", (now,))
        return dict(db.execute("SELECT key, until FROM suppressions").fetchall())

    def _incident(self, incident_id: str, limit: int) -> list[StoredEvent]:
        rows = self._db().execute(
            "SELECT seq, payload FROM events WHERE incident_id = ? ORDER BY seq ASC LIMIT ?", (incident_id, limit)
        ).fetchall()
        return [StoredEvent(seq=seq, event=json.loads(payload)) for seq, payload in rows]

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
        if self._closed:
            raise StoreClosedError(f"event store {self.path} is closed")
        try:
            fut = self._executor.submit(fn, *args)
        except RuntimeError as exc:  # close() shut the executor down after the check above
            raise StoreClosedError(f"event store {self.path} is closed") from exc
        return await asyncio.wrap_future(fut)

    async def append(self, event: Event, suppressed: str | None = None) -> int:
        """Store `event`, committed before this returns; returns its `seq`.

        Appending an `event_id` that is already stored changes nothing and returns the
        existing row's `seq`. With `suppressed` (the reason) the event is kept and queryable
        but never sent to Kafka and not counted in the backlog.
        """
        return await self._run(self._append, event, suppressed)

    async def append_many(self, events: Iterable[Event]) -> list[int]:
        """Store several events in one transaction (all or none), committed before this
        returns; returns their `seq`s in order. Same duplicate rule as append()."""
        events = list(events)
        if not events:
            return []
        return await self._run(self._append_many, events)

    async def pending(self, limit: int = 500) -> list[PendingRecord]:
        """Up to `limit` undelivered rows, oldest (lowest `seq`) first."""
        if limit < 1:
            raise ValueError(f"pending(limit={limit}): limit must be at least 1")
        return await self._run(self._pending, limit)

    async def mark_delivered(self, seqs: Iterable[int]) -> int:
        """Mark rows delivered in one transaction; returns how many were still pending."""
        seqs = list(seqs)
        if not seqs:
            return 0
        return await self._run(self._mark_delivered, seqs)

    async def backlog(self) -> int:
        """Number of undelivered rows."""
        return await self._run(self._backlog)

    async def query(
        self,
        status: str | None = None,
        category: str | None = None,
        grid: str | None = None,
        camera: str | None = None,
        limit: int = 100,
        before_seq: int | None = None,
        after_seq: int | None = None,
    ) -> list[StoredEvent]:
        """Events matching every given filter, newest first.

        `grid` matches that grid and every grid below it (codes are prefixes of their
        children's). `before_seq` pages backwards (rows with a smaller `seq`). With `after_seq`
        the rows after it come oldest first: that is the backfill for an SSE client that
        reconnects with Last-Event-ID.
        """
        if limit < 1:
            raise ValueError(f"query(limit={limit}): limit must be at least 1")
        return await self._run(
            self._query, status, category, grid, camera, limit, before_seq, after_seq
        )

    async def get(self, event_id: str) -> StoredEvent | None:
        """The stored event with this `event_id`, or None."""
        return await self._run(self._get, event_id)

    async def latest_of_incident(self, incident_id: str) -> StoredEvent | None:
        """The newest lifecycle event (not a verification) of this incident, or None."""
        return await self._run(self._latest_of_incident, incident_id)

    async def suppress(self, keys: Iterable[str], until: float, incident_id: str) -> None:
        """Persist suppression windows (a restart keeps them), committed before this returns."""
        await self._run(self._suppress, list(keys), until, incident_id)

    async def suppressions(self, now: float) -> dict[str, float]:
        """Suppression windows still running at `now` (Unix time), key -> until; drops the rest."""
        return await self._run(self._suppressions, now)
    async def incident(self, incident_id: str, limit: int = 1000) -> list[StoredEvent]:
        """Every event of one incident (opened, updated..., cleared), oldest first."""
        return await self._run(self._incident, incident_id, limit)

    async def on_connection(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """`fn(connection)` on the store's thread, in turn with all else (bridge.store.parked_records,
        outbox_writer); the backlog is counted again after it."""
        return await self._run(lambda: (fn(self._db()), self._backlog())[0])

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
