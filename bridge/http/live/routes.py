"""The console's live endpoints: a camera's live video (proxied from the restreamer, behind the
API's login like everything else), the detections of its last analysed frame, and availability."""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from bridge.store.availability import AvailabilityLog, Place, report
from bridge.http.live.supervisor import LiveUnavailable, Restreamer


class TrackBox(BaseModel):
    id: int
    label: str = Field(examples=["person"])
    score: float
    box: list[float] = Field(description="[x1, y1, x2, y2], normalised (0..1, origin top-left).")


class ZoneShape(BaseModel):
    name: str
    polygon: list[list[float]] = Field(description="[[x, y], ...], normalised (0..1, origin top-left).")


class Overlay(BaseModel):
    camera_id: str
    at: float | None = Field(description="Unix time of the analysed frame the boxes are from; null before the first.")
    tracks: list[TrackBox] = Field(description="Objects tracked in that frame.")
    zones: list[ZoneShape] = Field(description="The camera's configured zones.")


def overlay_of(pipeline: Any, camera_id: str) -> Overlay:
    """The last analysed frame's tracks (every stage's analyzer) and the camera's zones. Read only."""
    # The analyzer's tracks include ones lost a moment ago (kept for re-identification): only those
    # seen in the last analysed frame (the analyzer's newest frame time) are drawn.
    times = [stage.analyzer._frame_times[-1] for stage in pipeline.stages if stage.analyzer._frame_times]
    at = max(times, default=None)
    shown = [TrackBox(id=t.id, label=t.label, score=round(float(t.last.score), 3), box=[round(float(v), 4) for v in t.last.box])
             for stage in pipeline.stages for t in stage.analyzer.tracks if t.points and t.last.t == at]
    zones = [ZoneShape(name=z.name, polygon=[list(p) for p in z.polygon]) for z in pipeline.camera.zones]
    return Overlay(camera_id=camera_id, at=at, tracks=shown, zones=zones)


@dataclass
class LiveFeatures:
    """What the live routes read; the service fills in what it runs."""

    restreamer: Restreamer | None = None
    overlay: Callable[[str], Overlay | None] | None = None
    availability: AvailabilityLog | None = None
    places: Callable[[], list[tuple[str, str | None, Place]]] | None = None
    position: Callable[[str], float | None] | None = None  # a file camera's media time now


class RateView(BaseModel):
    rate: float | None = Field(description="Online share of the observed time, 0..1; null when nothing was observed.")
    online_s: float
    observed_s: float = Field(description="Seconds of the window the service was watching.")


class CameraAvailability(BaseModel):
    id: str
    name: str | None
    street: str | None
    street_code: str | None
    district: str | None
    district_code: str | None
    day: RateView
    week: RateView
    hourly: list[float | None] = Field(description="Online rate of each of the last 24 hours, oldest first.")


class GroupAvailability(BaseModel):
    code: str | None
    name: str | None
    cameras: int
    day: RateView
    week: RateView


class AvailabilityReport(BaseModel):
    at: float
    windows_s: dict[str, float]
    hours: int
    cameras: list[CameraAvailability]
    streets: list[GroupAvailability]
    districts: list[GroupAvailability]


def live_router(features: LiveFeatures, camera_ids: Callable[[], list[str]]) -> APIRouter:
    r = APIRouter(tags=["cameras"])

    def known(camera_id: str) -> None:
        if camera_id not in camera_ids():
            raise HTTPException(404, f"no camera with id {camera_id!r}")

    @r.get("/cameras/{camera_id}/live.mp4", response_class=StreamingResponse,
           responses={200: {"content": {"video/mp4": {}}}, 404: {}, 503: {}},
           summary="The camera's live video: fragmented MP4 (H.264 as the camera sends it), endless.")
    async def live(camera_id: str) -> StreamingResponse:
        known(camera_id)
        rs = features.restreamer
        if rs is None or not rs.serves(camera_id):
            raise HTTPException(404, f"no live video for camera {camera_id!r}: `live.enabled` is off"
                                if rs is None else f"no live video for camera {camera_id!r}")
        try:
            body = await rs.stream(camera_id, features.position(camera_id) if features.position else None)
        except LiveUnavailable as exc:
            raise HTTPException(503, str(exc)) from None
        return StreamingResponse(body, media_type="video/mp4", headers={"Cache-Control": "no-store"})

    @r.get("/cameras/{camera_id}/overlay", response_model=Overlay,
           summary="The last analysed frame's detections and the camera's zones, normalised, to draw over the video.")
    async def overlay(camera_id: str) -> Overlay:
        known(camera_id)
        found = features.overlay(camera_id) if features.overlay is not None else None
        if found is None:
            raise HTTPException(404, f"camera {camera_id!r} is not analysed by this service")
        return found

    @r.get("/availability", response_model=AvailabilityReport,
           summary="Online rate per camera, street and district over the last day and week (在线率).")
    async def availability() -> AvailabilityReport:
        if features.availability is None or features.places is None:
            raise HTTPException(404, "availability is not recorded by this service")
        doc = await asyncio.to_thread(report, features.availability, features.places(), time.time())
        return AvailabilityReport(**doc)

    return r
