"""Plate numbers in API responses: only roles at or above `privacy.plate_role` see them.

Events are stored as sent to the platform; responses to lower roles drop the plate's text, its
hash and the plate crop's URL (the colour and confidence stay: they identify no one).
"""
from __future__ import annotations

from typing import Any

from fastapi import Request

from bridge.http.auth import RANK


def may_see_plates(request: Request) -> bool:
    who = getattr(request.state, "principal", None)
    state = getattr(request.app.state, "api", None)
    least = getattr(state, "plate_role", "operator")
    return who is not None and RANK[who.role] >= RANK[least]


def without_plate(event: dict[str, Any]) -> dict[str, Any]:
    """A copy of a stored event (JSON form) with no plate text, hash or crop."""
    plate, evidence = event.get("plate"), event.get("evidence") or {}
    if not plate and not evidence.get("plate"):
        return event
    out = dict(event)
    if plate:
        out["plate"] = {k: v for k, v in plate.items() if k not in ("text", "text_hash")}
    if evidence.get("plate"):
        out["evidence"] = {k: v for k, v in evidence.items() if k != "plate"} | {
            "sha256": {k: v for k, v in (evidence.get("sha256") or {}).items() if k != "plate"}}
    return out


def visible(request: Request, allowed: bool | None = None):
    """A function that shows an event to this caller: as stored, or without its plate."""
    if allowed is None:
        allowed = may_see_plates(request)
    return (lambda e: e) if allowed else without_plate
