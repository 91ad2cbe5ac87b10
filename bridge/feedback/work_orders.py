"""Work-order states from the platform's feedback topic (accepted, dispatched, ... closed), per incident.

Kept in the console database (`<data_dir>/console.sqlite3`, table `work_orders`): the console's
clocks (`bridge.http.console.clocks`) read them. A message the platform re-sends (same incident, state
and time) is stored once. Each call opens its own short connection; callers run it in a thread.
"""
from __future__ import annotations

import sqlite3
import threading
import time
from collections import defaultdict
from contextlib import closing
from pathlib import Path

from bridge.store.sqlite_files import connect_wal

_SCHEMA = """
CREATE TABLE IF NOT EXISTS work_orders (
    incident_id   TEXT NOT NULL,
    state         TEXT NOT NULL,
    at            REAL NOT NULL,  -- Unix time of the change, as the platform gives it
    work_order_id TEXT,
    received_at   REAL NOT NULL,
    PRIMARY KEY (incident_id, state, at)
);
"""

_CHUNK = 500


class WorkOrderLog:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        with closing(self._conn()) as db, db:
            db.executescript(_SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        return connect_wal(self.path, "console database (work orders)")

    def record(self, incident_id: str, state: str, at: float, work_order_id: str | None = None) -> bool:
        """Store one state change; False when it was stored before (a re-sent message)."""
        with self._lock, closing(self._conn()) as db, db:
            cur = db.execute("INSERT OR IGNORE INTO work_orders VALUES (?, ?, ?, ?, ?)",
                             (incident_id, state, at, work_order_id, time.time()))
            return cur.rowcount == 1

    def history(self, incident_ids: list[str]) -> dict[str, list[tuple[str, float]]]:
        """incident id -> [(state, at)], oldest first, for the incidents that have any."""
        out: dict[str, list[tuple[str, float]]] = defaultdict(list)
        with closing(self._conn()) as db:
            for i in range(0, len(incident_ids), _CHUNK):
                chunk = incident_ids[i:i + _CHUNK]
                rows = db.execute(f"SELECT incident_id, state, at FROM work_orders WHERE incident_id IN "
                                  f"({','.join('?' * len(chunk))}) ORDER BY at, received_at", chunk).fetchall()
                for inc, state, at in rows:
                    out[inc].append((state, at))
        return dict(out)
