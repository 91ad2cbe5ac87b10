"""The console's incidents: one row per incident (state, age, best evidence, review, clock), its detail
with the whole lifecycle, and on-time rates per street and category.

Rows come from the outbox (`bridge.http.console.incidents_query`); work-order states from the console
database (`bridge.feedback.work_orders`); each row's light from `bridge.http.console.clocks`, the same function
the map colours its incidents with.
"""
from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import structlog
from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, Field

from bridge.events.catalogue import Catalogue
from bridge.bridge_config import ClocksConfig
from bridge.http.console.clocks import Clock, clock, limits_of
from bridge.http.console.incidents_query import IncidentSummary, State, query_incidents
from bridge.location.coordinates import convert
from bridge.http.plate_access import visible
from bridge.feedback.work_orders import WorkOrderLog

log = structlog.get_logger(__name__)

_SCAN = 5000  # incidents read when a filter only the clocks or reviews can answer narrows the page


class IncidentRow(BaseModel):
    incident_id: str
    state: str = Field(description="The latest lifecycle event's status: opened, updated or cleared.")
    event: dict[str, Any] = Field(description="The latest lifecycle event (as the caller's role may see it).")
    event_seq: int
    latest_seq: int = Field(description="Sequence number of the incident's newest event; the page cursor.")
    events: int = Field(description="How many events the incident has (lifecycle, verifications, reviews).")
    opened_at: str
    last_at: str
    age_s: float = Field(description="Seconds from the report to `at` (now).")
    thumbnail: str | None = Field(description="Best evidence: the crop (else snapshot) of the most confident event.")
    best_event_id: str | None = None
    review: dict[str, Any] | None = Field(description="The latest operator review: decision, reason, note, reviewer, at.")
    work_order: str | None = Field(description="The work order's latest state from the platform's feedback, if any.")
    light: Literal["green", "yellow", "red"]
    light_reason: str
    step: str | None = Field(description="The work order's step whose clock runs: acceptance, handling, verification, done.")
    due_at: float | None = Field(description="Unix time the running step's limit ends.")
    overdue: bool
    verdict: Literal["on_time", "late", "pending"]


class IncidentPage(BaseModel):
    incidents: list[IncidentRow]
    next_before: int | None = None
    at: float = Field(description="The time the clocks were evaluated at (Unix).")


class IncidentDetail(BaseModel):
    incident: IncidentRow
    lifecycle: list[dict[str, Any]] = Field(description="Every event of the incident, oldest first, each with `seq`.")
    sources: list[dict[str, Any]]
    point_wgs84: list[float] | None
    work_orders: list[dict[str, Any]] = Field(description="Work-order states from the platform, oldest first.")


class Rate(BaseModel):
    key: str
    name: str | None = None
    on_time: int
    late: int
    pending: int
    rate: float | None = Field(description="on_time / (on_time + late); null with neither.")


class OnTimeRates(BaseModel):
    since: float
    at: float
    streets: list[Rate]
    categories: list[Rate]


def incidents_router(store_path: Path, store_incident: Callable[[str], Any], catalogue: Catalogue | None,
                     clocks: ClocksConfig, work_orders: WorkOrderLog | None) -> APIRouter:
    r = APIRouter(tags=["incidents"])

    def clock_of(s: IncidentSummary, states: list[tuple[str, float]], now: float) -> Clock:
        code = s.event["category"]["code"]
        entry = catalogue.by_code.get(code) if catalogue is not None else None
        return clock(opened_at=s.opened_at.timestamp(), now=now, limits=limits_of(code, catalogue, clocks),
                     states=states, yellow_at=clocks.yellow_at,
                     status="verified" if s.verified and s.event["status"] != "cleared" else s.event["status"],
                     still_present=s.still_present,
                     legacy_limit_s=entry.time_limit_s if entry else None,
                     false_alarm=bool(s.review and s.review.get("decision") == "false_alarm"))

    def rows(found: list[IncidentSummary], now: float, show) -> list[IncidentRow]:
        history = work_orders.history([s.incident_id for s in found]) if work_orders is not None and found else {}
        out = []
        for s in found:
            c = clock_of(s, history.get(s.incident_id, []), now)
            best = s.best or {}
            out.append(IncidentRow(
                incident_id=s.incident_id, state=s.event["status"], event=show(s.event), event_seq=s.event_seq,
                latest_seq=s.latest_seq, events=s.events, opened_at=s.opened_at.isoformat(),
                last_at=s.event["occurred_at"], age_s=round(max(0.0, now - s.opened_at.timestamp()), 1),
                thumbnail=best.get("crop") or best.get("snapshot"), best_event_id=best.get("event_id"),
                review=s.review, work_order=c.work_order, light=c.light, light_reason=c.why, step=c.step,
                due_at=c.due_at, overdue=c.overdue, verdict=c.verdict))
        return out

    async def read(now: float, show, **kw) -> list[IncidentRow]:
        try:
            found = await asyncio.to_thread(query_incidents, store_path, **kw)
            return await asyncio.to_thread(rows, found, now, show)
        except ValueError as exc:
            raise HTTPException(503, str(exc)) from None

    @r.get("/incidents", response_model=IncidentPage, summary="One row per incident, newest activity first.")
    async def incidents(
        request: Request,
        state: State = Query("all", description="open (not cleared), cleared, or all."),
        category: str | None = Query(None, description="Category code."),
        grid: str | None = Query(None, description="Grid code, or a prefix of one (a street or community)."),
        camera: str | None = None,
        incident: str | None = Query(None, description="Only this incident (the live list refreshes one row)."),
        review: Literal["confirmed", "false_alarm", "unreviewed"] | None = Query(None, description="By the latest review."),
        overdue: bool = Query(False, description="Only incidents whose running step is past its time limit."),
        light: Literal["green", "yellow", "red"] | None = None,
        at: float | None = Query(None, ge=0, le=1e11, description="Evaluate the clocks at this Unix time instead of now."),
        limit: int = Query(100, ge=1, le=1000),
        before: int | None = Query(None, ge=1, le=2**63 - 1, description="Cursor: incidents whose newest event is older than this seq."),
    ) -> IncidentPage:
        now = time.time() if at is None else at
        narrowed = overdue or review is not None or light is not None
        found = await read(now, visible(request), state=state, category=category, grid=grid, camera=camera,
                           incident=incident, before=before, limit=_SCAN if narrowed else limit)
        if narrowed:
            found = [x for x in found if (not overdue or x.overdue) and (light is None or x.light == light) and (
                review is None or (x.review or {}).get("decision", "unreviewed") == review)][:limit]
        nxt = found[-1].latest_seq if len(found) == limit else None
        return IncidentPage(incidents=found, next_before=nxt, at=now)

    @r.get("/incidents/rates", response_model=OnTimeRates,
           summary="On-time rates per street and per category of the incidents reported in a window.")
    async def rates(request: Request, since_s: float = Query(7 * 86400, gt=0, le=400 * 86400,
                                                          description="Window: incidents reported this many seconds back."),
                    at: float | None = Query(None, ge=0, le=1e11, description="Evaluate the clocks at this Unix time.")) -> OnTimeRates:
        now = time.time() if at is None else at
        found = await read(now, lambda e: e, limit=100_000)
        since = now - since_s
        by_street: dict[str, list[str]] = defaultdict(list)
        by_cat: dict[str, list[str]] = defaultdict(list)
        names: dict[str, str | None] = {}
        for x in found:
            if datetime.fromisoformat(x.opened_at).timestamp() < since:
                continue
            g = x.event.get("grid") or {}
            street = g.get("street") or "(no street)"
            by_street[street].append(x.verdict)
            code = x.event["category"]["code"]
            names[code] = x.event["category"].get("name")
            by_cat[code].append(x.verdict)
        return OnTimeRates(since=since, at=now, streets=[_rate(k, v) for k, v in sorted(by_street.items())],
                           categories=[_rate(k, v, names.get(k)) for k, v in sorted(by_cat.items())])

    @r.get("/incidents/{incident_id}", response_model=IncidentDetail, responses={404: {"description": "No such incident."}},
           summary="One incident: its row, every event (the lifecycle), its sources and work-order states.")
    async def detail(incident_id: str, request: Request,
                     at: float | None = Query(None, ge=0, le=1e11, description="Evaluate the clock at this Unix time.")) -> IncidentDetail:
        now = time.time() if at is None else at
        show = visible(request)
        found = await read(now, show, incident=incident_id, limit=1)
        if not found:
            raise HTTPException(404, f"incident_id: no incident {incident_id!r}")
        life = await store_incident(incident_id)
        ev = found[0].event
        sources = ev.get("sources") or [ev["source"]]
        loc, point = ev.get("location") or {}, None
        try:
            point = list(convert(loc["lon"], loc["lat"], loc.get("crs", "wgs84"), "wgs84"))
        except (KeyError, ValueError) as exc:  # a malformed location only costs the map its dot
            log.warning("console.incident_location_unusable", incident=incident_id, error=repr(exc))
        history = (await asyncio.to_thread(work_orders.history, [incident_id])).get(incident_id, []) \
            if work_orders is not None else []
        return IncidentDetail(incident=found[0], lifecycle=[show(e.event) | {"seq": e.seq} for e in life],
                              sources=sources, point_wgs84=point,
                              work_orders=[{"state": s, "at": datetime.fromtimestamp(t, timezone.utc).isoformat()}
                                           for s, t in history])

    return r


def _rate(key: str, verdicts: list[str], name: str | None = None) -> Rate:
    on, late = verdicts.count("on_time"), verdicts.count("late")
    return Rate(key=key, name=name, on_time=on, late=late, pending=len(verdicts) - on - late,
                rate=round(on / (on + late), 4) if on + late else None)
