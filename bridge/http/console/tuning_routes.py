"""The tuning bench's API: a camera's zones and rules, a frame to draw on, backtests, save, roll back.

Only an operator assigned to the camera (or an admin) reaches these routes. The work itself is
done by a `Tuning` implementation the composition root provides (it knows the whole config,
the replay and the running cameras); this module is the HTTP contract.
"""
from __future__ import annotations

import asyncio
from typing import Any, Protocol

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from bridge.http.auth import Principal
from bridge.http.security import tuner
from detectors.detector_config import MaskConfig, ObjectFilterConfig, RuleConfig, ZoneConfig

_ZONE_EXAMPLE = {"name": "table", "polygon": [[0.45, 0.84], [0.72, 0.84], [0.72, 0.965], [0.45, 0.965]]}
_RULE_EXAMPLE = {"id": "stay-at-table", "type": "dwell", "category": "market.road-occupation", "zone": "table",
                 "classes": ["person"], "min_dwell_s": 6, "grace_s": 3}


class CameraTuning(BaseModel):
    """What the bench edits of a camera; its id, URL and location stay as configured."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"zones": [_ZONE_EXAMPLE], "rules": [_RULE_EXAMPLE]}]})
    zones: list[ZoneConfig] = Field(default_factory=list, description="Named polygons rules refer to.")
    rules: list[RuleConfig] = Field(default_factory=list, description="Detection rules run on this camera.")
    masks: MaskConfig = Field(default_factory=MaskConfig, description="Include/exclude masks for detections.")
    objects: dict[str, ObjectFilterConfig] = Field(default_factory=dict, description="Per-class detection filters.")


class Problems(Exception):
    """Cross-checks that fail (a rule's zone missing, an unknown category): (field path, message)."""

    def __init__(self, problems: list[tuple[tuple, str]]) -> None:
        super().__init__("; ".join(f"{'.'.join(map(str, loc))}: {msg}" for loc, msg in problems))
        self.problems = problems


class Clip(BaseModel):
    index: int
    name: str = Field(examples=["one-by-one-person-detection.mp4"])
    duration_s: float | None


class Version(BaseModel):
    version: int = Field(examples=[3])
    at: str = Field(examples=["2026-11-22T08:00:00.000+00:00"])
    author: str = Field(examples=["alice"])
    comment: str | None = None
    config: CameraTuning | None = None


class CameraBench(BaseModel):
    camera_id: str = Field(examples=["table"])
    name: str | None
    config: CameraTuning
    config_hash: str = Field(description="Hash of the detection config now running.")
    clips: list[Clip] = Field(description="Recorded clips a backtest can run on.")
    categories: list[str] = Field(description="Category codes rules may use.")
    rule_types: list[str] = Field(examples=[["dwell", "parking", "occupation", "crowd", "dumping"]])
    version: int | None = Field(None, description="Saved version now running; null: the config file's.")


class BacktestRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    config: CameraTuning
    clip: int = Field(0, ge=0, description="Index into the camera's `clips`.")


class Incident(BaseModel):
    incident_id: str
    rule: str
    zone: str | None
    opened_s: float = Field(description="Media time the incident opened, seconds from the clip start.")
    cleared_s: float | None = Field(description="Media time it cleared; null: still open at the clip's end.")
    confidence: float
    thumbnail: str | None = Field(description="Evidence URL of the subject's crop.")
    snapshot: str | None = Field(description="Evidence URL of the annotated frame.")


class SceneRegionView(BaseModel):
    """A static new region of the camera's scene model (an object of any kind added to the scene)."""

    id: int = Field(description="Stable while the region persists.")
    box: list[float] = Field(description="x1, y1, x2, y2, normalised.", examples=[[0.46, 0.78, 0.55, 0.9]])
    area: float = Field(description="Fraction of the frame.")
    appeared_s: float = Field(description="Media time its pixels first differed from the reference scene.")
    occluded: bool = Field(description="Hidden now by something in front of it (held, not cleared).")


class GateView(BaseModel):
    """The camera's change gate on the backtest's latest frame: where the picture changed, what the model ran on."""

    decision: str = Field(description="full (whole frame), region (the changed part) or skip (model not run).")
    reason: str = Field(description="Why: first, refresh, size, clock, large, change, none.")
    changed: list[list[float]] = Field(description="Changed parts since the model last looked, x1, y1, x2, y2 normalised.")
    changed_fraction: float = Field(description="Fraction of the frame that changed.")
    region: list[float] | None = Field(None, description="The region the model ran on (decision region), normalised.")
    frames_full: int = Field(description="Frames run whole so far.")
    frames_region: int = Field(description="Frames run on a region so far.")
    frames_gated: int = Field(description="Frames the model was not run on so far.")


class Backtest(BaseModel):
    id: str
    camera_id: str
    clip: Clip
    state: str = Field(examples=["running"], description="queued, running, done, failed or cancelled.")
    progress_s: float = Field(description="Media seconds processed so far.")
    frames: int
    incidents: list[Incident]
    error: str | None = None
    config_hash: str
    scene_regions: list[SceneRegionView] | None = Field(
        None, description="The scene model's static regions now (null: no rule of this camera uses the scene model); "
        "its reference image with them outlined is at `.../scene`.")
    gate: GateView | None = Field(None, description="The change gate's last decision (null: the gate is off); its "
                                  "picture with the changed parts outlined is at `.../gate`.")


class SaveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    config: CameraTuning
    comment: str | None = Field(None, max_length=500, description="Why; kept with the version.")


class RollbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int = Field(ge=0, description="Saved version to bring back (0: the config file's).")


class Tuning(Protocol):
    def bench(self, camera_id: str) -> CameraBench: ...
    def frame_jpeg(self, camera_id: str, clip: int, t: float) -> bytes: ...
    def check(self, camera_id: str, config: CameraTuning) -> str: ...
    def start_backtest(self, camera_id: str, config: CameraTuning, clip: int, who: Principal) -> Backtest: ...
    def backtest(self, camera_id: str, job_id: str) -> Backtest | None: ...
    def scene_jpeg(self, camera_id: str, job_id: str) -> bytes | None: ...
    def gate_jpeg(self, camera_id: str, job_id: str) -> bytes | None: ...
    async def save(self, camera_id: str, config: CameraTuning, who: Principal, comment: str | None) -> Version: ...
    async def rollback(self, camera_id: str, version: int, who: Principal) -> Version: ...
    def versions(self, camera_id: str) -> list[Version]: ...


def problems_422(exc: Problems) -> HTTPException:
    return HTTPException(422, [{"loc": ["body", *loc], "field": ".".join(map(str, loc)), "msg": msg, "type": "value_error"}
                               for loc, msg in exc.problems])


_NOT_FOUND = {404: {"description": "No such camera (or clip, job, version)."}}
_INVALID = {422: {"description": "The edited config is not valid; each item names the field path."}}


def tuning_router(t: Tuning) -> APIRouter:
    r = APIRouter(prefix="/tuning/cameras/{camera_id}", tags=["tuning"], responses={403: {"description": "Not an operator of this camera."}})

    def known(camera_id: str) -> None:
        try:
            t.bench(camera_id)
        except KeyError as exc:
            raise HTTPException(404, str(exc.args[0])) from None

    @r.get("", response_model=CameraBench, responses=_NOT_FOUND, summary="The camera's zones and rules, its clips and categories.")
    async def bench(camera_id: str, who: Principal = Depends(tuner)) -> CameraBench:
        known(camera_id)
        return t.bench(camera_id)

    @r.get("/frame", response_class=Response, responses={**_NOT_FOUND, 200: {"content": {"image/jpeg": {}}}},
           summary="A frame of a recorded clip to draw zones on (JPEG).")
    async def frame(camera_id: str, clip: int = Query(0, ge=0, le=1000), t_s: float = Query(0.0, ge=0, le=86400, alias="t"),
                    who: Principal = Depends(tuner)) -> Response:
        known(camera_id)
        try:
            jpeg = await asyncio.to_thread(t.frame_jpeg, camera_id, clip, t_s)
        except IndexError as exc:
            raise HTTPException(404, str(exc)) from None
        return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=60"})

    @r.post("/check", responses={**_NOT_FOUND, **_INVALID}, summary="Validate an edited config without running it.")
    async def check(camera_id: str, config: CameraTuning, who: Principal = Depends(tuner)) -> dict[str, Any]:
        known(camera_id)
        try:
            return {"ok": True, "config_hash": t.check(camera_id, config)}
        except Problems as exc:
            raise problems_422(exc) from None

    @r.post("/backtests", response_model=Backtest, status_code=202, responses={**_NOT_FOUND, **_INVALID,
            409: {"description": "A backtest of this camera is already running."}},
            summary="Replay a recorded clip with the edited config in a worker thread; poll the result.")
    async def start_backtest(camera_id: str, body: BacktestRequest, who: Principal = Depends(tuner)) -> Backtest:
        known(camera_id)
        try:
            return t.start_backtest(camera_id, body.config, body.clip, who)
        except Problems as exc:
            raise problems_422(exc) from None
        except IndexError as exc:
            raise HTTPException(422, [{"loc": ["body", "clip"], "field": "clip", "msg": str(exc), "type": "value_error"}]) from None
        except RuntimeError as exc:
            raise HTTPException(409, str(exc)) from None

    @r.get("/backtests/{job_id}", response_model=Backtest, responses=_NOT_FOUND)
    async def get_backtest(camera_id: str, job_id: str, who: Principal = Depends(tuner)) -> Backtest:
        job = t.backtest(camera_id, job_id)
        if job is None:
            raise HTTPException(404, f"no backtest {job_id!r} of camera {camera_id!r}")
        return job

    @r.get("/backtests/{job_id}/scene", response_class=Response,
           responses={**_NOT_FOUND, 200: {"content": {"image/jpeg": {}}}},
           summary="The backtest's scene model: the reference scene with its static regions outlined (JPEG).")
    async def scene(camera_id: str, job_id: str, who: Principal = Depends(tuner)) -> Response:
        jpeg = await asyncio.to_thread(t.scene_jpeg, camera_id, job_id)
        if jpeg is None:
            raise HTTPException(404, f"no scene model in backtest {job_id!r} of camera {camera_id!r} (yet)")
        return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    @r.get("/backtests/{job_id}/gate", response_class=Response,
           responses={**_NOT_FOUND, 200: {"content": {"image/jpeg": {}}}},
           summary="The backtest's change gate: what the model last saw, the changed parts (red), the region run (yellow).")
    async def gate(camera_id: str, job_id: str, who: Principal = Depends(tuner)) -> Response:
        jpeg = await asyncio.to_thread(t.gate_jpeg, camera_id, job_id)
        if jpeg is None:
            raise HTTPException(404, f"no change gate in backtest {job_id!r} of camera {camera_id!r} (yet)")
        return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    @r.post("/config", response_model=Version, status_code=201, responses={**_NOT_FOUND, **_INVALID},
            summary="Save a new version of the camera's config and apply it to this camera only.")
    async def save(camera_id: str, body: SaveRequest, who: Principal = Depends(tuner)) -> Version:
        known(camera_id)
        try:
            return await t.save(camera_id, body.config, who, body.comment)
        except Problems as exc:
            raise problems_422(exc) from None

    @r.get("/versions", response_model=list[Version], responses=_NOT_FOUND, summary="Saved versions, newest first.")
    async def versions(camera_id: str, who: Principal = Depends(tuner)) -> list[Version]:
        known(camera_id)
        return await asyncio.to_thread(t.versions, camera_id)

    @r.post("/rollback", response_model=Version, status_code=201, responses=_NOT_FOUND,
            summary="Bring back an earlier version (saved as a new version) and apply it.")
    async def rollback(camera_id: str, body: RollbackRequest, who: Principal = Depends(tuner)) -> Version:
        known(camera_id)
        try:
            return await t.rollback(camera_id, body.version, who)
        except KeyError as exc:
            raise HTTPException(404, str(exc.args[0])) from None
        except Problems as exc:
            raise problems_422(exc) from None

    return r
