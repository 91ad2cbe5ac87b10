"""What a restart carries over from the outbox: the incidents open when the process stopped.

The outbox holds every event the service accepted, committed before it was sent, so the
incidents open at a stop, a deploy, a crash or a power cut are those whose latest event is not
`cleared`. At start, in single-process mode (a cluster hands incidents over in its state topic),
the service reads them with its own read-only connection and:

- replays their events through the fresh merge stage without output (as the Kafka merge stage
  rebuilds a partition), so a source's next event lands in the merged incident the platform knows;
- keeps back the rest of an incident whose `opened` was kept back (a closed work order);
- gives each camera and sensor its own open incidents to carry on (`CameraStage.carry_over`,
  `SensorEngine.adopt`): the same `incident_id` goes on if the condition is seen again within
  `restart.confirm_s` (plus the rule's own duration); otherwise it clears with a `clear_reason`;
- clears at once, with a `clear_reason`, the incidents of a camera, sensor or rule that is no
  longer configured, so none is left open forever.

Track ids start again in a new process, so an incident is carried on by whatever subject of its
rule is in its zone within the window (`Lifecycle.adopt`), never by its old track id.
"""
from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog
from pydantic import ValidationError

from bridge.events.model import Event, Evidence, IncidentSource
from bridge.feedback.messages import SuppressionGate
from bridge.merging.rewrite import MergeStage

log = structlog.get_logger(__name__)

# Every event of every incident whose latest event is not `cleared`, oldest first. The latest
# event per incident comes from the `incident_id` index alone (no row reads but one per incident);
# an incident last answered by a `verified` event after its clear is dropped in `read_open`.
_OPEN_SQL = """
WITH latest AS (SELECT max(seq) AS last FROM events GROUP BY incident_id),
     open AS (SELECT e.incident_id FROM latest l JOIN events e ON e.seq = l.last WHERE e.status != 'cleared')
SELECT e.seq, e.payload, e.suppressed FROM events e JOIN open o ON e.incident_id = o.incident_id
WHERE e.status NOT IN ('verified', 'reviewed')
ORDER BY e.seq
"""


@dataclass
class OpenIncident:
    """One source's incident open at the stop, as its camera's or sensor's lifecycle needs it."""

    kind: str  # "video" or "iot"
    source_id: str  # camera or sensor id
    incident_id: str  # the source's own id (its lifecycle's)
    merged_id: str  # the id the platform knows (the merged incident's)
    rule: str
    zone: str | None
    opened_at: float  # the rules' clock live: Unix time
    score: float
    bbox: list[float] | None
    last: dict[str, Any]  # the latest event this source reported for it

    def carried(self, subject: int) -> dict:
        """In the form `CameraStage.adopt` takes (the cluster's state-topic records). Track ids
        start again in a new process, so `subject` is a placeholder no track has (negative), one per
        incident: two open incidents of one rule in one zone stay two until subjects claim them."""
        return {"rule": self.rule, "zone": self.zone, "subject": subject, "incident_id": self.incident_id,
                "opened_at": self.opened_at, "score": self.score, "bbox": self.bbox}


@dataclass
class Carried:
    incidents: list[OpenIncident] = field(default_factory=list)
    replay: list[Event] = field(default_factory=list)  # as the merge stage first saw them
    held: dict[str, str] = field(default_factory=dict)  # merged incident id -> why it is kept back


def _own(ev: dict) -> dict:
    """The reporting source's entry in `sources` (its own incident id and whether it is active)."""
    src = ev["source"]
    kind, sid = src["kind"], src.get("camera_id") or src.get("sensor_id")
    for s in ev.get("sources") or []:
        if s.get("kind") == kind and (s.get("camera_id") or s.get("sensor_id")) == sid:
            return s
    return {"kind": kind, "camera_id": src.get("camera_id"), "sensor_id": src.get("sensor_id"),
            "zone": src.get("zone"), "rule": ev["detector"]["rule"], "incident_id": ev["incident_id"],
            "active": ev["status"] != "cleared"}


def read_open(path: str | Path) -> Carried:
    """The incidents open in the outbox at `path` (blocking; run it in a thread)."""
    conn = sqlite3.connect(f"file:{Path(path)}?mode=ro", uri=True, timeout=30.0)
    try:
        rows = conn.execute(_OPEN_SQL).fetchall()
    finally:
        conn.close()
    status: dict[str, str] = {}  # merged incident id -> its latest status
    parsed = []
    for seq, payload, suppressed in rows:
        try:
            ev = Event.model_validate_json(payload)
        except (ValidationError, ValueError) as exc:
            log.error("resume.bad_event", outbox=str(path), seq=seq, error=str(exc)[:300],
                      action="skipped: its incident is not carried over")
            continue
        status[ev.incident_id] = ev.status
        parsed.append((ev, suppressed))
    out = Carried()
    first: dict[tuple, float] = {}
    latest: dict[tuple, tuple[dict, dict, str]] = {}
    for ev, suppressed in parsed:
        if status[ev.incident_id] == "cleared":  # cleared, then answered a verify request
            continue
        doc = ev.model_dump(mode="json")
        own = _own(doc)
        key = (own["kind"], own.get("camera_id") or own.get("sensor_id"), own["incident_id"])
        first.setdefault(key, ev.occurred_at.timestamp())
        latest[key] = (doc, own, ev.incident_id)
        out.replay.append(ev.model_copy(update={
            "incident_id": own["incident_id"], "sources": [IncidentSource.model_validate(own)],
            "status": "updated" if own["active"] else "cleared"}))
        if suppressed is not None:
            out.held[ev.incident_id] = suppressed
        else:
            out.held.pop(ev.incident_id, None)
    for key, (doc, own, merged) in latest.items():
        if not own["active"]:
            continue
        bbox = doc["evidence"].get("bbox")
        out.incidents.append(OpenIncident(key[0], key[1], key[2], merged, doc["detector"]["rule"],
                                          doc["source"].get("zone"), first[key], float(doc["confidence"]),
                                          bbox, doc))
    return out


def cleared_event(inc: OpenIncident, reason: str, at: datetime) -> Event:
    """The clear of a carried-over incident nothing can carry on (its camera, sensor or rule is gone)."""
    ev = Event.model_validate(inc.last)
    own = IncidentSource.model_validate({**_own(inc.last), "active": False})
    return ev.model_copy(update={
        "event_id": str(uuid.uuid4()), "incident_id": inc.incident_id, "status": "cleared", "occurred_at": at,
        "sources": [own], "clear_reason": reason, "verification": None, "evidence": Evidence(bbox=ev.evidence.bbox)})


async def resume(carried: Carried, *, cameras: dict[str, Any], sensors: Any | None, merge: MergeStage | None,
                 gate: SuppressionGate, publish: Callable[[Event], Awaitable[None]],
                 confirm_s: float) -> dict[str, int]:
    """Carry the open incidents over into this process; returns counts for the log.

    `cameras`: camera id -> its `CameraStage`; `sensors`: the sensor runtime, if any.
    """
    now = time.time()
    if merge is not None:
        for ev in carried.replay:
            merge.apply(ev)
    for iid, reason in carried.held.items():
        gate.hold(iid, reason)
    by_source: dict[tuple[str, str], list[OpenIncident]] = {}
    for inc in carried.incidents:
        by_source.setdefault((inc.kind, inc.source_id), []).append(inc)
    counts = {"carried": 0, "cleared": 0}
    gone: list[tuple[OpenIncident, str]] = []
    for (kind, sid), incs in by_source.items():
        by_id = {i.incident_id: i for i in incs}
        docs = [i.carried(-(n + 1)) for n, i in enumerate(incs)]
        what = f"{'camera' if kind == 'video' else 'sensor'} {sid}"
        if kind == "video" and sid in cameras:
            left = cameras[sid].carry_over(docs, now, confirm_s)
        elif kind == "iot" and sensors is not None and sensors.engine.has(sid):
            left = sensors.engine.adopt(sid, docs, now, confirm_s)
        else:
            gone += [(by_id[x["incident_id"]], f"restart: {what} is no longer configured") for x in docs]
            continue
        counts["carried"] += len(incs) - len(left)
        gone += [(by_id[x["incident_id"]], f"restart: rule {x['rule']!r} is no longer configured on {what}")
                 for x in left]
    at = datetime.fromtimestamp(now).astimezone()
    for inc, reason in gone:
        await publish(cleared_event(inc, reason, at))
        counts["cleared"] += 1
        log.warning("resume.cleared", incident=inc.merged_id, source=inc.source_id, rule=inc.rule, reason=reason)
    return counts


async def carry_over(path: Path, count: Callable[[str, int], None] | None = None, **kwargs) -> dict[str, int]:
    """`read_open` and `resume` in one: what `Service.run` calls at start. `count(outcome, n)`:
    where the counts go (the metrics)."""
    carried = await asyncio.to_thread(read_open, path)
    counts = await resume(carried, **kwargs)
    for outcome, n in counts.items():
        if count is not None:
            count(outcome, n)
    log.info("resume.incidents", outbox=str(path), open=len(carried.incidents), replayed=len(carried.replay), **counts)
    return counts
