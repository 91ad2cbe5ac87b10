"""Outbox retention without holding up the service: its own connection, indexes, an incremental open set.

The store's thread is never used: reads run on this module's own connection (WAL readers do not
block the writer) and deletes in chunks of 2000 rows, each a short write transaction that the
store's appends wait for (milliseconds). Which incidents are still open is kept between runs: a
`cleared` ends an incident for good, so each run looks only at the rows added since the last one
and at the incidents open then; the first run after a start reads the table once.
"""
from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from bridge.store.parked_records import PARKED_PREFIX, ensure_table
from bridge.store.sqlite_files import connect_wal

CHUNK = 2000
# Done with: delivered, or kept back for good by a closed work order (parked rows are owed, not done).
DONE = f"(delivered_at IS NOT NULL OR (suppressed IS NOT NULL AND suppressed NOT LIKE '{PARKED_PREFIX}%'))"
_INDEXES = """
CREATE INDEX IF NOT EXISTS events_created ON events(created_at);
CREATE INDEX IF NOT EXISTS events_cleared ON events(incident_id) WHERE status = 'cleared';
"""


def used_bytes(db: sqlite3.Connection) -> int:
    page = db.execute("PRAGMA page_size").fetchone()[0]
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    free = db.execute("PRAGMA freelist_count").fetchone()[0]
    return (pages - free) * page


class OutboxRetention:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._seen = 0  # rows up to this seq have been looked at
        self._open: set[str] = set()  # incidents open at the last look
        self._indexed = False

    def _connect(self) -> sqlite3.Connection:
        db = connect_wal(self.path, "event store (retention)", isolation_level=None)
        if not self._indexed:
            db.executescript(_INDEXES)
            ensure_table(db)
            self._indexed = True
        return db

    def _keep(self, db: sqlite3.Connection) -> set[str]:
        """Incidents whose events stay: open ones (no `cleared` yet), and those with an event still owed."""
        top = db.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0]
        new = {r[0] for r in db.execute(
            "SELECT DISTINCT incident_id FROM events WHERE seq > ? AND seq <= ? AND status NOT IN ('cleared', 'verified', 'reviewed')",
            (self._seen, top))}
        self._seen = top
        self._open = {i for i in self._open | new if db.execute(
            "SELECT 1 FROM events WHERE incident_id = ? AND status = 'cleared' LIMIT 1", (i,)).fetchone() is None}
        owed = {r[0] for r in db.execute(
            "SELECT DISTINCT incident_id FROM events WHERE delivered_at IS NULL AND suppressed IS NULL "
            "UNION SELECT incident_id FROM events WHERE seq IN (SELECT seq FROM parked)")}
        keep = self._open | owed
        db.execute("CREATE TEMP TABLE IF NOT EXISTS retention_keep (incident_id TEXT PRIMARY KEY)")
        db.execute("BEGIN")  # one transaction for the temp table, not one per row
        db.execute("DELETE FROM retention_keep")
        db.executemany("INSERT INTO retention_keep VALUES (?)", [(i,) for i in keep])
        db.execute("COMMIT")
        return keep

    def prune(self, max_age_s: float | None, max_bytes: int | None, now: float) -> dict[str, int]:
        """Delete done events outside open incidents, by age then by size; returns the counts."""
        out = {"age": 0, "size": 0}
        if not self.path.exists():
            return out
        with closing(self._connect()) as db:
            self._keep(db)
            keep = "incident_id NOT IN (SELECT incident_id FROM retention_keep)"
            if max_age_s is not None:
                while n := db.execute(
                        f"DELETE FROM events WHERE seq IN (SELECT seq FROM events INDEXED BY events_created "
                        f"WHERE created_at < ? AND {DONE} AND {keep} ORDER BY created_at LIMIT {CHUNK})",
                        (now - max_age_s,)).rowcount:
                    out["age"] += n
            if max_bytes is not None:
                while used_bytes(db) > max_bytes:
                    n = db.execute(f"DELETE FROM events WHERE seq IN (SELECT seq FROM events WHERE {DONE} AND {keep} "
                                   f"ORDER BY seq LIMIT {CHUNK})").rowcount
                    out["size"] += n
                    if n == 0:
                        out["over_size"] = 1
                        break
        return out

    def protected_evidence(self, pattern) -> set[str]:
        """Evidence names in the events of the incidents kept (open, or with an event still owed)."""
        if not self.path.exists():
            return set()
        with closing(self._connect()) as db:
            self._keep(db)
            names: set[str] = set()
            for (payload,) in db.execute(
                    "SELECT payload FROM events WHERE incident_id IN (SELECT incident_id FROM retention_keep)"):
                names.update(pattern.findall(payload))
            return names
