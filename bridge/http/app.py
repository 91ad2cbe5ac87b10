"""The HTTP API for operations centres: events (query and live stream), cameras, evidence, health."""
from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import cv2
import numpy as np
from fastapi import APIRouter, FastAPI, Header, HTTPException, Query, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field
from sse_starlette import EventSourceResponse

from bridge.events.catalogue import Catalogue
from bridge.bridge_config import ClocksConfig, MapConfig
from bridge.http.console.bundle import bundle_router
from bridge.http.console.incidents_api import incidents_router
from bridge.http.console.review import review_router
from bridge.http.console.map_api import Locations, map_router, mount_library
from bridge.store.dead_letters import DeadLetterStore
from bridge.http.console.tuning_routes import Tuning, tuning_router
from bridge.http.console.views import views_router
from bridge.events.evidence_store import EvidenceStore, media_type
from bridge.location.grid import GridIndex
from bridge.http.hub import Hub
from bridge.http.live.routes import LiveFeatures, live_router
from bridge.store.outbox import EventStore
from bridge.store.parked_records import parked_count
from bridge.feedback.work_orders import WorkOrderLog
from bridge.http.parked_routes import parked_router
from bridge.http.readiness import Readiness
from bridge.http.plate_access import visible
from bridge.http.security import AuthContext, auth_router, authenticate

STATIC = Path(__file__).with_name("static")


class EventPage(BaseModel):
    events: list[dict[str, Any]]
    next_before: int | None = None


class CameraView(BaseModel):
    id: str
    name: str | None
    url: str  # redacted
    state: str = Field(description="connecting, online, stalled, offline or stopped.")
    since: float = Field(description="Unix time the camera entered its state.")
    down_since: float | None = Field(None, description="Unix time it stopped delivering; null while it delivers.")
    last_frame_at: float | None
    last_error: str | None
    last_error_at: float | None = None
    reconnects: int
    decode_errors: int = 0
    fps_in: float = Field(0.0, description="Video packets (compressed frames) received per second, last 10 s.")
    fps_analysed: float = Field(0.0, description="Frames through detection and rules per second, last 10 s.")
    keyframes_only: bool = False
    frames_received: int = 0
    frames_decoded: int
    frames_sampled: int
    frames_dropped: int
    frames_analysed: int


class ApiState:
    """What the handlers read; the service fills it in."""

    def __init__(
        self,
        store: EventStore,
        hub: Hub,
        evidence: EvidenceStore,
        cameras: Callable[[], list[CameraView]],
        ready: Callable[[], bool],
        snapshot: Callable[[str], np.ndarray | None] | None = None,
        deadletters: DeadLetterStore | None = None,
        sensors: Callable[[], list[dict[str, Any]]] | None = None,
        *,
        auth: AuthContext | None = None,
        grid: GridIndex | None = None,
        tuning: Tuning | None = None,
        cors_origins: list[str] | None = None,
        readiness: Readiness | None = None,
        notify_dispatch: Callable[[], None] | None = None,
        plate_role: str = "operator",
        live: LiveFeatures | None = None,
        map_config: MapConfig | None = None,
        locations: Locations | None = None,
        catalogue: Catalogue | None = None,
        clocks: ClocksConfig | None = None,
        work_orders: WorkOrderLog | None = None,
        publish: Callable[[Any], Any] | None = None,
    ) -> None:
        self.store, self.hub, self.evidence, self.cameras, self.ready = store, hub, evidence, cameras, ready
        self.snapshot = snapshot or (lambda camera_id: None)  # latest BGR frame of a camera
        self.deadletters, self.sensors = deadletters, sensors
        self.auth, self.grid, self.tuning, self.cors_origins = auth, grid, tuning, cors_origins or []
        self.readiness, self.notify_dispatch = readiness, notify_dispatch  # /readyz reasons; re-sent parked rows
        self.plate_role = plate_role  # least role that sees plate numbers (bridge/http/plate_access.py)
        self.live = live  # live video, overlay, availability (bridge/http/live/routes.py)
        # The map page: its settings, where each camera stands (id -> lon, lat, crs), time limits.
        self.map_config, self.catalogue = map_config or MapConfig(), catalogue
        self.locations = locations or (lambda: {})
        # Incidents: the clocks' limits, work-order states from feedback, and the outbox path reviews go through.
        self.clocks, self.work_orders, self.publish = clocks or ClocksConfig(), work_orders, publish


def create_app(state: ApiState) -> FastAPI:
    # Swagger UI and ReDoc load their scripts from a CDN; operations centres are often offline,
    # so only the OpenAPI document itself is served (behind a token, like everything but /healthz).
    # `authenticate` is global: a route added later needs a viewer's token unless made public.
    app = FastAPI(title="xueliang-ingest", version="0.1.0", description=_DESCRIPTION,
                  docs_url=None, redoc_url=None, openapi_url=None, dependencies=[Security(authenticate)])
    app.state.api = state
    app.state.auth = state.auth
    if state.cors_origins:  # off unless configured: the console is served by the service itself
        app.add_middleware(CORSMiddleware, allow_origins=state.cors_origins, allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type", "Last-Event-ID"])
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.include_router(_health_router(state))
    app.include_router(_events_router(state))
    app.include_router(_cameras_router(state))
    if state.live is not None:
        app.include_router(live_router(state.live, lambda: [c.id for c in state.cameras()]))
    app.include_router(_sensors_router(state))
    app.include_router(parked_router(state.store, state.notify_dispatch))
    app.include_router(views_router(state.store, state.grid))
    app.include_router(bundle_router(state.store, state.evidence, state.auth.audit if state.auth is not None else None))
    if state.auth is not None:
        app.include_router(auth_router(state.auth))
    if state.tuning is not None:
        app.include_router(tuning_router(state.tuning))
    library = mount_library(app, state.map_config)
    app.include_router(map_router(state.map_config, state.grid, state.store.path, state.cameras, state.locations,
                                  state.catalogue, library, state.clocks, state.work_orders))
    app.include_router(review_router(state.store, state.publish or _publisher(state),
                                     state.auth.audit if state.auth is not None else None,
                                     state.tuning if hasattr(state.tuning, "start_review_backtest") else None))
    app.include_router(incidents_router(state.store.path, state.store.incident, state.catalogue, state.clocks,
                                        state.work_orders))
    app.include_router(_pages_router(state))
    app.include_router(_openapi_router(app))
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


_DESCRIPTION = """Grid-resolved incidents from cameras and sensors.

Every endpoint but `/healthz` needs an API token (`Authorization: Bearer xl_<id>_<secret>`, made
with `xueliang tokens add`). Roles: **viewer** reads events and cameras; **operator** also tunes the
cameras assigned to it (`/tuning/...`); **admin** does everything (audit log). Browsers log in with
`POST /login`, which sets an HttpOnly session cookie that `EventSource` and `<img>` send too.
A 422 lists each problem with `loc` (where) and `field` (the path as one string) and `msg`."""

_RULE_TAGS = {"dwell", "parking", "occupation", "crowd", "dumping"}


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's 422 body plus `field`: the path without the request part and union tags."""
    detail = []
    for err in exc.errors():
        loc = [p for p in err["loc"] if p not in _RULE_TAGS]
        field = ".".join(str(p) for p in loc[1:]) or str(loc[0]) if loc else ""
        item = {"loc": list(err["loc"]), "field": field, "msg": err["msg"], "type": err["type"]}
        if "input" in err and isinstance(err["input"], (str, int, float, bool, type(None))):
            item["input"] = err["input"]
        detail.append(item)
    return JSONResponse({"detail": detail}, status_code=422)


def _openapi_router(app: FastAPI) -> APIRouter:
    r = APIRouter(include_in_schema=False)

    @r.get("/openapi.json")
    async def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    return r


def _health_router(state: ApiState) -> APIRouter:
    r = APIRouter(tags=["health"])

    @r.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @r.get("/readyz", summary="200 when ready, 503 with `reasons` when not (docs/reliability.md lists them).")
    async def readyz(response: Response) -> dict[str, Any]:
        backlog = await state.store.backlog()
        parked = await state.store.on_connection(parked_count)
        # Reasons and detail from one moment, with no await between them: held events (or the disk
        # guard) may change while the store answers, and the body must not contradict itself.
        if state.readiness is not None:
            reasons, detail = state.readiness.reasons(), state.readiness.detail()
        else:
            reasons, detail = ([] if state.ready() else ["starting or stopping"]), {}
        response.status_code = 503 if reasons else 200
        return {"ready": not reasons, "reasons": reasons, "outbox_backlog": backlog, "outbox_parked": parked, **detail}

    @r.get("/metrics", response_class=Response)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return r


def _events_router(state: ApiState) -> APIRouter:
    r = APIRouter(tags=["events"])

    @r.get("/events", response_model=EventPage, responses={422: {"description": "A filter is not valid; `field` names it."}})
    async def list_events(
        request: Request,
        status: Literal["opened", "updated", "cleared", "verified", "reviewed"] | None = None,
        category: str | None = Query(None, description="Category code."),
        grid: str | None = Query(None, description="Grid code, or a prefix of one (a street or community)."),
        camera: str | None = None,
        limit: int = Query(100, ge=1, le=1000),
        before: int | None = Query(None, ge=1, description="Cursor: only events older than this sequence number."),
    ) -> EventPage:
        rows = await state.store.query(status=status, category=category, grid=grid, camera=camera,
                                       limit=limit, before_seq=before)
        nxt = rows[-1].seq if len(rows) == limit else None
        show = visible(request)
        # `suppressed`: kept but not sent to the platform (closed work order), with the reason.
        return EventPage(events=[show(row.event) | {"seq": row.seq} | ({"suppressed": row.suppressed} if row.suppressed else {})
                                 for row in rows], next_before=nxt)

    @r.get("/events/stream", summary="Live events as Server-Sent Events; resumes after Last-Event-ID.")
    async def stream(request: Request, last_event_id: Annotated[str | None, Header()] = None) -> EventSourceResponse:
        after = _parse_last_event_id(last_event_id)
        sub = state.hub.subscribe()  # subscribe before the backfill so nothing falls in between
        show = visible(request)

        async def gen():
            sent = after or 0
            try:
                if after is not None:
                    while True:
                        rows = await state.store.query(after_seq=sent, limit=500)
                        for row in rows:
                            sent = row.seq
                            yield {"id": str(row.seq), "event": "event",
                                   "data": json.dumps(show(row.event), ensure_ascii=False)}
                        if len(rows) < 500:
                            break
                async for seq, event in sub:
                    if seq <= sent:
                        continue
                    sent = seq
                    yield {"id": str(seq), "event": "event", "data": json.dumps(show(event), ensure_ascii=False)}
            finally:
                state.hub.unsubscribe(sub)

        return EventSourceResponse(gen(), ping=15)

    @r.get("/evidence/{name}", response_class=FileResponse, tags=["evidence"])
    async def evidence(name: str) -> FileResponse:
        path = state.evidence.path_of(name)
        if path is None:
            raise HTTPException(404, f"no evidence named {name!r}")
        return FileResponse(path, media_type=media_type(name))

    return r


def _publisher(state: ApiState):
    """Without the service's publish (an app on its own): store the event, then tell the live stream."""
    async def publish(event) -> None:
        seq = await state.store.append(event)
        state.hub.publish(seq, event.model_dump(mode="json"))
    return publish


def _parse_last_event_id(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    if not value.isdigit():
        raise HTTPException(422, f"Last-Event-ID must be an event sequence number, got {value!r}")
    return int(value)


def _cameras_router(state: ApiState) -> APIRouter:
    r = APIRouter(tags=["cameras"])

    @r.get("/cameras", response_model=list[CameraView])
    async def cameras() -> list[CameraView]:
        return state.cameras()

    def find(camera_id: str) -> CameraView:
        for view in state.cameras():
            if view.id == camera_id:
                return view
        raise HTTPException(404, f"no camera with id {camera_id!r}")

    @r.get("/cameras/{camera_id}", response_model=CameraView)
    async def camera(camera_id: str) -> CameraView:
        return find(camera_id)

    @r.get("/cameras/{camera_id}/snapshot", response_class=Response,
           responses={200: {"content": {"image/jpeg": {}}}, 404: {}, 503: {}})
    async def snapshot(camera_id: str) -> Response:
        find(camera_id)
        image = state.snapshot(camera_id)
        if image is None:
            raise HTTPException(503, f"camera {camera_id!r} has not delivered a frame yet")
        jpeg = await asyncio.to_thread(_jpeg, image)
        return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    return r


def _jpeg(image: np.ndarray, quality: int = 85) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError(f"JPEG encoding failed for an image of shape {image.shape}")
    return buf.tobytes()


class DeadLetterView(BaseModel):
    id: int
    received_at: float
    topic: str
    sensor_id: str | None
    reason: str
    detail: str
    size: int
    truncated: bool
    payload: str
    payload_encoding: Literal["utf-8", "base64"]


class DeadLetterPage(BaseModel):
    counts: dict[str, int]
    items: list[DeadLetterView]
    next_before: int | None = None


def _sensors_router(state: ApiState) -> APIRouter:
    r = APIRouter(tags=["sensors"])

    @r.get("/deadletters", response_model=DeadLetterPage,
           summary="Rejected sensor messages with their raw payload, newest first, and counts by reason.")
    async def deadletters(
        reason: str | None = Query(None, description="Only this rejection reason, e.g. `not_json`."),
        sensor: str | None = Query(None, description="Only messages attributed to this sensor id."),
        limit: int = Query(100, ge=1, le=1000),
        before: int | None = Query(None, ge=1, description="Cursor: only entries older than this id."),
    ) -> DeadLetterPage:
        if state.deadletters is None:
            return DeadLetterPage(counts={}, items=[])
        rows = await state.deadletters.query(reason=reason, sensor=sensor, limit=limit, before=before)
        return DeadLetterPage(counts=await state.deadletters.counts(), items=[DeadLetterView(**row) for row in rows],
                              next_before=rows[-1]["id"] if len(rows) == limit else None)

    @r.get("/sensors", summary="Every registered sensor: last values, last seen, readings, open rules.")
    async def sensors() -> list[dict[str, Any]]:
        return state.sensors() if state.sensors is not None else []

    return r


def _pages_router(state: ApiState) -> APIRouter:
    r = APIRouter(include_in_schema=False)

    @r.get("/", response_class=HTMLResponse)
    async def index() -> HTMLResponse:
        return HTMLResponse((STATIC / "index.html").read_text(encoding="utf-8"))

    return r
