"""The dead-letter store: every rejected sensor message, raw payload included, for inspection.

Its own SQLite file (WAL) next to the outbox, written from one worker thread like the outbox.
Rows are written in batches, committed before the messages are acknowledged to the broker, so
a rejected message is either stored here or still on the broker. The table is capped: beyond
`max_rows` the oldest rows go (counted), so a device spraying garbage cannot fill the disk.
"""
from __future__ import annotations

import asyncio
import base64
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from bridge.store.sqlite_files import connect_wal

log = structlog.get_logger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS deadletters (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at REAL    NOT NULL,
    topic       TEXT    NOT NULL,
    sensor_id   TEXT,
    reason      TEXT    NOT NULL,
    detail      TEXT    NOT NULL,
    size        INTEGER NOT NULL,
    payload     BLOB    NOT NULL
);
CREATE INDEX IF NOT EXISTS deadletters_reason ON deadletters(reason, id);
CREATE INDEX IF NOT EXISTS deadletters_sensor ON deadletters(sensor_id, id);
CREATE TABLE IF NOT EXISTS deadletter_counts (reason TEXT PRIMARY KEY, n INTEGER NOT NULL);
"""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    received_at: float
    topic: str
    sensor_id: str | None
    reason: str
    detail: str
    payload: bytes


class DeadLetterStore:
    def __init__(self, path: str | Path, *, max_rows: int = 1_000_000, max_payload_bytes: int = 65_536) -> None:
        self.path = Path(path)
        self.max_rows = max_rows
        self.max_payload_bytes = max_payload_bytes
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="deadletters")
        self._conn: sqlite3.Connection | None = None
        self._executor.submit(self._open).result()

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = connect_wal(self.path, "dead-letter store", isolation_level=None)
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.executescript(_SCHEMA)
        self._conn = conn

    def _add(self, items: list[DeadLetter]) -> None:
        db = self._conn
        assert db is not None
        counts: dict[str, int] = {}
        for d in items:
            counts[d.reason] = counts.get(d.reason, 0) + 1
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(
                "INSERT INTO deadletters (received_at, topic, sensor_id, reason, detail, size, payload) VALUES (?,?,?,?,?,?,?)",
                [(d.received_at, d.topic, d.sensor_id, d.reason, d.detail, len(d.payload),
                  d.payload[: self.max_payload_bytes]) for d in items])
            db.executemany("INSERT INTO deadletter_counts (reason, n) VALUES (?, ?) "
                           "ON CONFLICT(reason) DO UPDATE SET n = n + excluded.n", list(counts.items()))
            last = db.execute("SELECT max(id) FROM deadletters").fetchone()[0]
            if last is not None and last > self.max_rows:
                db.execute("DELETE FROM deadletters WHERE id <= ?", (last - self.max_rows,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _query(self, reason: str | None, sensor: str | None, limit: int, before: int | None) -> list[dict[str, Any]]:
        where, args = [], []
        for col, val in (("reason = ?", reason), ("sensor_id = ?", sensor), ("id < ?", before)):
            if val is not None:
                where.append(col)
                args.append(val)
        sql = "SELECT id, received_at, topic, sensor_id, reason, detail, size, payload FROM deadletters"
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = self._conn.execute(sql + " ORDER BY id DESC LIMIT ?", (*args, limit)).fetchall()  # type: ignore[union-attr]
        return [_row(r) for r in rows]

    def _counts(self) -> dict[str, int]:
        return dict(self._conn.execute("SELECT reason, n FROM deadletter_counts ORDER BY reason").fetchall())  # type: ignore[union-attr]

    async def add(self, items: list[DeadLetter]) -> None:
        """Store a batch in one transaction, committed when this returns."""
        if items:
            await asyncio.wrap_future(self._executor.submit(self._add, items))

    async def query(self, reason: str | None = None, sensor: str | None = None, limit: int = 100,
                    before: int | None = None) -> list[dict[str, Any]]:
        """Newest first; `before` is an id cursor."""
        return await asyncio.wrap_future(self._executor.submit(self._query, reason, sensor, limit, before))

    async def counts(self) -> dict[str, int]:
        """Messages ever rejected, by reason (not reduced by the row cap)."""
        return await asyncio.wrap_future(self._executor.submit(self._counts))

    def close(self) -> None:
        def _close() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
        self._executor.submit(_close).result()
        self._executor.shutdown(wait=True)


def _row(r: tuple) -> dict[str, Any]:
    id_, received_at, topic, sensor_id, reason, detail, size, payload = r
    try:
        text, encoding = payload.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        text, encoding = base64.b64encode(payload).decode("ascii"), "base64"
    return {"id": id_, "received_at": received_at, "topic": topic, "sensor_id": sensor_id, "reason": reason,
            "detail": detail, "size": size, "truncated": len(payload) < size, "payload": text,
            "payload_encoding": encoding}
