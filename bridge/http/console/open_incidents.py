"""Open incidents (latest lifecycle event not `cleared`) for the console's map, from the outbox.

Read on a read-only connection of its own (WAL lets readers run beside the outbox's writer), so
a map refresh never queues behind the appends of the event loop's store thread.
"""
from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from bridge.store.event_log import PREFIX_END


# Per incident: its latest lifecycle event (open unless `cleared`), its first event (the opening
# time) and, when the latest of all is a `verified` answer, whether it found the incident still there.
_SQL = """
SELECT l.seq, l.payload, o.occurred_at,
       CASE WHEN v.seq IS NULL THEN NULL ELSE json_extract(v.payload, '$.verification.still_present') END,
       v.seq IS NOT NULL
FROM (SELECT incident_id, max(CASE WHEN status NOT IN ('verified', 'reviewed') THEN seq END) AS life,
             max(CASE WHEN status != 'reviewed' THEN seq END) AS latest, min(seq) AS first
      FROM events {where} GROUP BY incident_id) m
JOIN events l ON l.seq = m.life
JOIN events o ON o.seq = m.first
LEFT JOIN events v ON v.seq = m.latest AND v.status = 'verified'
WHERE l.status != 'cleared'
ORDER BY l.seq DESC LIMIT ?
"""


@dataclass(frozen=True)
class OpenIncident:
    seq: int
    event: dict[str, Any]  # the latest lifecycle event
    opened_at: datetime
    verified: bool  # the latest event is a `verified` answer
    still_present: bool | None


def open_incidents(store_path: Path, grid: str | None, limit: int) -> list[OpenIncident]:
    """Newest first; `grid` is a grid code or a prefix of one (a street's or community's)."""
    if str(store_path) == ":memory:":
        raise ValueError("the event store is in memory: open incidents cannot be read beside it")
    where, args = "", []
    if grid:
        where, args = "WHERE grid >= ? AND grid < ?", [grid, grid + PREFIX_END]
    conn = sqlite3.connect(f"{Path(store_path).resolve().as_uri()}?mode=ro", uri=True, timeout=10)
    try:
        rows = conn.execute(_SQL.format(where=where), [*args, limit]).fetchall()
    finally:
        conn.close()
    return [OpenIncident(seq, json.loads(payload), datetime.fromisoformat(opened), bool(verified),
                         None if present is None else bool(present))
            for seq, payload, opened, present, verified in rows]
