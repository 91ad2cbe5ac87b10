"""Automatic 核查: the `verified` event that answers a platform's verify request.

The service looks at the incident's camera again on its next analysed frame; the answer is
whether the rule's condition holds there now, with a fresh snapshot. The event keeps the
incident's id, category, location, grid (so it goes to the same partition as the incident) and
sources; it gets its own `event_id`.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bridge.events.model import Event
from bridge.events.evidence_store import StoredItem


@dataclass(frozen=True)
class PendingVerification:
    request_id: str
    incident: dict[str, Any]  # the incident's latest stored event
    camera_id: str
    zone: str | None
    rule: str


def verification_event(
    p: PendingVerification,
    at: datetime,
    still_present: bool | None,
    *,
    reason: str | None = None,
    evidence: dict[str, StoredItem] | None = None,
    bbox: tuple[float, float, float, float] | None = None,
    score: float | None = None,
) -> Event:
    doc = {k: v for k, v in p.incident.items() if k != "seq"}
    evidence = {k: v for k, v in (evidence or {}).items() if v is not None}  # None: refused by the disk guard
    doc.update(
        event_id=str(uuid.uuid4()),
        status="verified",
        occurred_at=at,
        source={"kind": "video", "camera_id": p.camera_id, "zone": p.zone},
        verification={"request_id": p.request_id, "still_present": still_present, "reason": reason},
        evidence={"bbox": [round(v, 4) for v in bbox] if bbox else None,
                  "sha256": {k: item.sha256 for k, item in evidence.items()},
                  **{k: item.url for k, item in evidence.items()}},
    )
    if score is not None:
        doc["confidence"] = round(min(1.0, max(0.0, score)), 4)
    return Event.model_validate(doc)
