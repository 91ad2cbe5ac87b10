"""Incidents, not event rows: one summary per incident from the outbox's event log.

Per incident: its latest lifecycle event (its state), its first (the opening time), how many
events it has, its best evidence (the most confident event with a snapshot) and its latest
operator review (a `reviewed` event). Read on a read-only connection of its own (WAL lets readers
run beside the outbox's writer), so a console refresh never queues behind the event loop's appends.
"""
from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from bridge.store.event_log import PREFIX_END


# The page is cut first (newest activity, state filter), then each row's review and best evidence are read.
_SQL = """
WITH m AS (SELECT incident_id, count(*) AS n, max(seq) AS latest, min(seq) AS first,
                  max(CASE WHEN status NOT IN ('verified', 'reviewed') THEN seq END) AS life,
                  max(CASE WHEN status = 'reviewed' THEN seq END) AS review,
                  max(CASE WHEN status != 'reviewed' THEN seq END) AS answer
           FROM events {where} GROUP BY incident_id {having}),
     page AS (SELECT m.*, l.payload AS lp, o.occurred_at AS opened FROM m
              JOIN events l ON l.seq = m.life JOIN events o ON o.seq = m.first
              {state} ORDER BY m.latest DESC LIMIT ?)
SELECT p.incident_id, p.n, p.latest, p.life, p.lp, p.opened, r.payload, v.seq IS NOT NULL,
       json_extract(v.payload, '$.verification.still_present'),
       (SELECT json_object('event_id', b.event_id, 'snapshot', json_extract(b.payload, '$.evidence.snapshot'),
                           'crop', json_extract(b.payload, '$.evidence.crop'),
                           'confidence', json_extract(b.payload, '$.confidence'))
        FROM events b WHERE b.incident_id = p.incident_id AND b.status NOT IN ('verified', 'reviewed')
          AND json_extract(b.payload, '$.evidence.snapshot') IS NOT NULL
        ORDER BY json_extract(b.payload, '$.confidence') DESC, b.seq LIMIT 1)
FROM page p LEFT JOIN events r ON r.seq = p.review
LEFT JOIN events v ON v.seq = p.answer AND v.status = 'verified'
ORDER BY p.latest DESC
"""

State = Literal["open", "cleared", "all"]


@dataclass(frozen=True)
class IncidentSummary:
    incident_id: str
    events: int  # every event of it: lifecycle, verifications, reviews
    latest_seq: int  # the cursor: pages go by the newest event of each incident
    event: dict[str, Any]  # the latest lifecycle event
    event_seq: int
    opened_at: datetime
    review: dict[str, Any] | None  # the latest `reviewed` event's `review`, with its time
    best: dict[str, Any] | None  # event_id, snapshot, crop, confidence of the most confident event
    verified: bool = False  # the latest event but reviews is a `verified` answer
    still_present: bool | None = None  # ... and what it found


def _page(conn: sqlite3.Connection, where: list[str], args: list[Any], having: str, cond: str,
          before: int | None, limit: int) -> list[tuple]:
    """The newest incidents found by walking the events backwards (the seq index) in batches, each
    batch summarised on the incident index: the cost follows the page, not the whole log."""
    scan = " AND ".join([*where, *(["seq < ?"] if before is not None else [])])
    ids = conn.execute(f"SELECT incident_id FROM events {'WHERE ' + scan if scan else ''} ORDER BY seq DESC",
                       [*args, *([before] if before is not None else [])])
    rows: list[tuple] = []
    seen: set[str] = set()
    batch = max(limit * 2, 50)
    while len(rows) < limit:
        chunk: list[str] = []
        for (inc,) in ids:
            if inc not in seen:
                seen.add(inc)
                chunk.append(inc)
                if len(chunk) == batch:
                    break
        if not chunk:
            break
        sub = [*where, f"incident_id IN ({','.join('?' * len(chunk))})"]
        sql = _SQL.format(where="WHERE " + " AND ".join(sub), having=having, state=cond)
        rows += conn.execute(sql, [*args, *chunk, *([before] if before is not None else []), limit - len(rows)]).fetchall()
        batch = min(batch * 2, 5000)
    return rows


def query_incidents(store_path: Path, *, state: State = "all", category: str | None = None,
                    grid: str | None = None, camera: str | None = None, incident: str | None = None,
                    before: int | None = None, limit: int = 100) -> list[IncidentSummary]:
    """Newest activity first; `grid` is a grid code or a prefix of one (a street's or community's)."""
    if str(store_path) == ":memory:":
        raise ValueError("the event store is in memory: incidents cannot be read beside it")
    where, args = [], []
    if category:
        where.append("category = ?")
        args.append(category)
    if grid:
        where.append("grid >= ? AND grid < ?")
        args += [grid, grid + PREFIX_END]
    if camera:
        where.append("camera_id = ?")
        args.append(camera)
    if incident:
        where.append("incident_id = ?")
        args.append(incident)
    having = ""
    if before is not None:
        having = "HAVING max(seq) < ?"
    cond = {"open": "WHERE l.status != 'cleared'", "cleared": "WHERE l.status = 'cleared'", "all": ""}[state]
    conn = sqlite3.connect(f"{Path(store_path).resolve().as_uri()}?mode=ro", uri=True, timeout=10)
    try:
        rows = _page(conn, where, args, having, cond, before, limit)
    finally:
        conn.close()
    out = []
    for inc, n, latest, seq, payload, opened, review, verified, present, best in rows:
        rev = None
        if review is not None:
            doc = json.loads(review)
            rev = (doc.get("review") or {}) | {"at": doc["occurred_at"], "event_id": doc["event_id"]}
        out.append(IncidentSummary(inc, n, latest, json.loads(payload), seq, datetime.fromisoformat(opened), rev,
                                   json.loads(best) if best else None, bool(verified),
                                   None if present is None else bool(present)))
    return out
