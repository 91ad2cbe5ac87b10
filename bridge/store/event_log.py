"""The event log: the outbox's `events` table read back, for the API, the console and feedback handling.

Each query is one plain function on a SQLite connection. `EventStore` runs them on its thread
(`await store.run(query_events, ...)`, or under their short names `store.query`, `store.get`,
`store.latest_of_incident`, `store.incident`); a reader with a connection of its own can call
them directly.
"""
from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

# Upper bound for a grid-prefix range scan: sorts after any string that starts with the prefix.
PREFIX_END = "\U0010ffff"  # above every code character: [code, code + this) is a grid prefix range

_COLUMNS = "SELECT seq, payload, suppressed FROM events"


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One row of the event log: its position and the event as parsed JSON."""

    seq: int
    event: dict[str, Any]
    suppressed: str | None = None  # why it was kept back from Kafka, if it was


def _stored(row: tuple | None) -> StoredEvent | None:
    return None if row is None else StoredEvent(row[0], json.loads(row[1]), row[2])


def query_events(
    db: sqlite3.Connection,
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
        args += [grid, grid + PREFIX_END]
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
    sql = _COLUMNS
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += f" ORDER BY seq {order} LIMIT ?"
    args.append(limit)
    return [StoredEvent(seq, json.loads(payload), sup) for seq, payload, sup in db.execute(sql, args)]


def get_event(db: sqlite3.Connection, event_id: str) -> StoredEvent | None:
    """The stored event with this `event_id`, or None."""
    return _stored(db.execute(f"{_COLUMNS} WHERE event_id = ?", (event_id,)).fetchone())


def latest_of_incident(db: sqlite3.Connection, incident_id: str) -> StoredEvent | None:
    """The newest lifecycle event (not a verification or a review) of this incident, or None."""
    return _stored(db.execute(
        f"{_COLUMNS} WHERE incident_id = ? AND status NOT IN ('verified', 'reviewed') "
        "ORDER BY seq DESC LIMIT 1", (incident_id,)).fetchone())


def incident_events(db: sqlite3.Connection, incident_id: str, limit: int = 1000) -> list[StoredEvent]:
    """Every event of one incident (opened, updated..., cleared), oldest first."""
    rows = db.execute(
        "SELECT seq, payload FROM events WHERE incident_id = ? ORDER BY seq ASC LIMIT ?", (incident_id, limit)
    ).fetchall()
    return [StoredEvent(seq=seq, event=json.loads(payload)) for seq, payload in rows]
