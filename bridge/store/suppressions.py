"""Suppression windows kept in the outbox file, so that a restart keeps them.

When the platform closes a work order, the incident's (source, zone, rule, category) keys are
suppressed until a time: events of those keys are stored but not sent. The windows live in the
`suppressions` table beside the events; these functions take the store's connection and run on its
thread (`store.suppress(...)`, `store.suppressions(now)`).
"""
from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable

from bridge.store.sqlite_files import write_transaction

SCHEMA = """
CREATE TABLE IF NOT EXISTS suppressions (
    key         TEXT PRIMARY KEY,  -- JSON of (source, zone, rule, category)
    until       REAL NOT NULL,     -- Unix time
    incident_id TEXT NOT NULL,
    created_at  REAL NOT NULL
);
"""


def save_suppressions(db: sqlite3.Connection, keys: Iterable[str], until: float, incident_id: str) -> None:
    """Persist suppression windows in one transaction, committed before this returns."""
    keys = list(keys)
    with write_transaction(db):
        for key in keys:  # a later, longer window wins; a shorter one never shortens it
            db.execute(
                "INSERT INTO suppressions (key, until, incident_id, created_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(key) DO UPDATE SET until = max(until, excluded.until), "
                "incident_id = excluded.incident_id, created_at = excluded.created_at",
                (key, until, incident_id, time.time()))


def live_suppressions(db: sqlite3.Connection, now: float) -> dict[str, float]:
    """Suppression windows still running at `now` (Unix time), key -> until; drops the rest."""
    db.execute("DELETE FROM suppressions WHERE until <= ?", (now,))
    return dict(db.execute("SELECT key, until FROM suppressions").fetchall())
