"""An event's evidence bundle as one file: a zip with the event, every evidence item and a manifest.

`manifest.json` lists each file with its size and sha256 computed when the bundle was made, next to
the sha256 the event recorded when the item was stored (`match` says whether they agree), so the
bundle can be checked on its own later. Viewers below `privacy.plate_role` get the event without
plate text and without the plate crop, as everywhere else. Each download is audited.
"""
from __future__ import annotations

import asyncio
import hashlib
import io
import json
import zipfile
from datetime import datetime, timezone
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from bridge.events.evidence_store import EvidenceStore
from bridge.store.outbox import EventStore
from bridge.http.plate_access import visible
from bridge.http.security import principal

ITEMS = ("before", "snapshot", "crop", "clip", "plate")


def make_bundle(event: dict[str, Any], evidence: EvidenceStore, made_by: str,
                clip_from: dict[str, Any] | None = None) -> bytes:
    """The zip's bytes (blocking: reads the evidence files). `clip_from`: another event of the incident
    whose clip to include when this event has none (the clip follows the opening in an `updated`)."""
    ev = dict(event.get("evidence") or {})
    recorded = dict(ev.get("sha256") or {})
    source = {}
    if not ev.get("clip") and clip_from is not None:
        other = clip_from.get("evidence") or {}
        ev["clip"], recorded["clip"] = other.get("clip"), (other.get("sha256") or {}).get("clip")
        source["clip"] = clip_from["event_id"]
    files, missing = [], []
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("event.json", json.dumps(event, ensure_ascii=False, indent=2), compress_type=zipfile.ZIP_DEFLATED)
        for field in ITEMS:
            url = ev.get(field)
            if not url:
                continue
            name = url.rsplit("/", 1)[-1]
            path = evidence.path_of(name)
            if path is None:  # removed by retention, or refused by a full disk when stored
                missing.append({"field": field, "url": url})
                continue
            data = path.read_bytes()
            arcname = f"{field}.{name.rsplit('.', 1)[-1]}"
            z.writestr(arcname, data, compress_type=zipfile.ZIP_STORED)  # JPEG and video are compressed already
            digest = hashlib.sha256(data).hexdigest()
            files.append({"name": arcname, "field": field, "url": url, "size": len(data), "sha256": digest,
                          "recorded_sha256": recorded.get(field), "match": recorded.get(field) == digest,
                          **({"from_event_id": source[field]} if field in source else {})})
        manifest = {"event_id": event["event_id"], "incident_id": event["incident_id"],
                    "made_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "made_by": made_by,
                    "detector": event.get("detector"), "files": files, "missing": missing,
                    "event_json_sha256": hashlib.sha256(z.read("event.json")).hexdigest()}
        z.writestr("manifest.json", json.dumps(manifest, ensure_ascii=False, indent=2), compress_type=zipfile.ZIP_DEFLATED)
    return buf.getvalue()


def bundle_router(store: EventStore, evidence: EvidenceStore, audit) -> APIRouter:
    r = APIRouter(tags=["evidence"])

    @r.get("/events/{event_id}/bundle", response_class=Response,
           responses={200: {"content": {"application/zip": {}}}, 404: {"description": "No such event."}},
           summary="The event's evidence as one zip: event.json, before/after, crop, clip and a manifest with sha256s.")
    async def bundle(event_id: str, request: Request) -> Response:
        row = await store.get(event_id)
        if row is None:
            raise HTTPException(404, f"event_id: no event {event_id!r}")
        who = principal(request)
        clip_from = None
        if not (row.event.get("evidence") or {}).get("clip"):
            life = await store.incident(row.event["incident_id"])
            clip_from = next((e.event for e in life if (e.event.get("evidence") or {}).get("clip")), None)
        data = await asyncio.to_thread(make_bundle, visible(request)(row.event), evidence, who.name, clip_from)
        if audit is not None:
            await audit(who, "evidence.bundle", event_id, {"incident_id": row.event["incident_id"], "bytes": len(data)})
        return Response(data, media_type="application/zip", headers={
            "Content-Disposition": f'attachment; filename="evidence-{event_id}.zip"', "Cache-Control": "private, no-store"})

    return r
