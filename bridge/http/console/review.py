"""Review: an operator confirms an incident or marks it a false alarm, with a reason.

The decision becomes an event of its own (status `reviewed`, with `review`) that goes the way every
event goes: the outbox first, then the live stream and Kafka, so the platform can cancel a work
order for a false alarm. It is audited in the console database, shown in the incident list, and
kept as a label: the tuning bench backtests a changed config against a camera's reviewed incidents
(`/tuning/cameras/{id}/review-backtests`, done by `bridge.http.console.review_backtest`).
"""
from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import Any, Literal, Protocol

import structlog
from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, ConfigDict, Field, model_validator

from bridge.http.auth import Principal
from bridge.http.console.tuning_routes import CameraTuning, Problems, problems_422
from bridge.events.model import Event, Review, ReviewReason
from bridge.store.outbox import EventStore
from bridge.http.security import require, tuner

log = structlog.get_logger(__name__)


class ReviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"decision": "false_alarm", "reason": "shadow", "note": "tree shadow at noon"}]})
    decision: Literal["confirmed", "false_alarm"] = Field(description="Is the incident real?")
    reason: ReviewReason | None = Field(None, description="Required with `false_alarm`: wrong_class, shadow, "
                                        "reflection, parked_legally, duplicate or other.")
    note: str | None = Field(None, max_length=500, description="Free text; required with reason `other`.")
    event_id: str | None = Field(None, description="The event the operator looked at; default: the incident's latest.")

    @model_validator(mode="after")
    def _reason(self) -> ReviewRequest:
        if self.decision == "false_alarm" and self.reason is None:
            raise ValueError("reason: a false alarm needs a reason")
        if self.decision == "confirmed" and self.reason is not None:
            raise ValueError("reason: only a false alarm has a reason")
        if self.reason == "other" and not (self.note or "").strip():
            raise ValueError("note: reason `other` needs a note saying what it was")
        return self


class ReviewCase(BaseModel):
    incident_id: str
    decision: str
    reason: str | None
    clip: str | None = Field(description="The incident's evidence clip the backtest replays; null: none kept.")
    now: bool | None = Field(None, description="The running config reports it again on its clip.")
    changed: bool | None = Field(None, description="The changed config reports it on its clip.")


class ReviewBacktest(BaseModel):
    id: str
    camera_id: str
    state: str = Field(description="queued, running, done or failed.")
    reviewed: int = Field(description="Reviewed incidents of this camera.")
    false_alarms: int
    removed: int = Field(description="False alarms the running config reports and the changed one does not.")
    lost: int = Field(description="Confirmed incidents the running config reports and the changed one does not.")
    untestable: int = Field(description="Reviewed incidents without a clip to replay (clips off, or removed).")
    summary: str = Field(examples=["of your 40 reviewed events, 12 false alarms: this change removes 9 and loses 1 real one"])
    cases: list[ReviewCase]
    error: str | None = None


class ReviewBacktestRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    config: CameraTuning


class ReviewBacktests(Protocol):
    def start_review_backtest(self, camera_id: str, config: CameraTuning, who: Principal) -> ReviewBacktest: ...
    def review_backtest(self, camera_id: str, job_id: str) -> ReviewBacktest | None: ...


def review_event(latest: dict[str, Any], req: ReviewRequest, who: Principal, now: datetime | None = None) -> Event:
    """The `reviewed` event: the incident's latest lifecycle event with a new id, the time and the decision."""
    review = Review(decision=req.decision, reason=req.reason, note=(req.note or "").strip() or None,
                    reviewer=who.name, reviewed_event_id=req.event_id or latest["event_id"])
    return Event.model_validate(latest | {"event_id": str(uuid.uuid4()), "status": "reviewed", "verification": None,
                                          "occurred_at": now or datetime.now(timezone.utc), "clear_reason": None,
                                          "review": review.model_dump()})


def review_router(store: EventStore, publish: Callable[[Event], Awaitable[None]],
                  audit: Callable[..., Awaitable[None]] | None, bench: ReviewBacktests | None) -> APIRouter:
    r = APIRouter(tags=["review"])

    @r.post("/incidents/{incident_id}/review", status_code=201, responses={
        404: {"description": "No such incident."}, 403: {"description": "Viewers do not review."},
        422: {"description": "A false alarm without a reason, or reason `other` without a note."}},
        summary="Confirm an incident or mark it a false alarm; sent on the event stream as a `reviewed` event.")
    async def review(incident_id: str, body: ReviewRequest, who: Principal = Depends(require("operator"))) -> dict[str, Any]:
        latest = await store.latest_of_incident(incident_id)
        if latest is None:
            raise HTTPException(404, f"incident_id: no incident {incident_id!r}")
        if body.event_id is not None:
            seen = await store.get(body.event_id)
            if seen is None or seen.event["incident_id"] != incident_id:
                raise HTTPException(422, [{"loc": ["body", "event_id"], "field": "event_id", "type": "value_error",
                                           "msg": f"no event {body.event_id!r} in incident {incident_id!r}"}])
        ev = review_event(latest.event, body, who)
        if latest.suppressed:  # the platform never got this incident (its work order was closed): nor its review
            await store.append(ev, suppressed=latest.suppressed)
        else:
            await publish(ev)
        if audit is not None:
            await audit(who, "incident.review", incident_id, {"decision": body.decision, "reason": body.reason,
                                                             "note": ev.review.note, "event_id": ev.event_id})
        log.info("incident.reviewed", incident=incident_id, decision=body.decision, reason=body.reason, by=who.name)
        return {"event_id": ev.event_id, "review": ev.review.model_dump()}

    if bench is None:
        return r

    @r.post("/tuning/cameras/{camera_id}/review-backtests", response_model=ReviewBacktest, status_code=202,
            tags=["tuning"], responses={404: {"description": "No such camera."}, 409: {"description": "One is running."}},
            summary="Replay each reviewed incident's clip with the running and the changed config: what the change "
                    "removes and loses.")
    async def start(camera_id: str, body: ReviewBacktestRequest, who: Principal = Depends(tuner)) -> ReviewBacktest:
        try:
            return bench.start_review_backtest(camera_id, body.config, who)
        except KeyError as exc:
            raise HTTPException(404, str(exc.args[0])) from None
        except Problems as exc:
            raise problems_422(exc) from None
        except RuntimeError as exc:
            raise HTTPException(409, str(exc)) from None

    @r.get("/tuning/cameras/{camera_id}/review-backtests/{job_id}", response_model=ReviewBacktest, tags=["tuning"],
           responses={404: {"description": "No such job."}})
    async def get(camera_id: str, job_id: str, who: Principal = Depends(tuner)) -> ReviewBacktest:
        job = bench.review_backtest(camera_id, job_id)
        if job is None:
            raise HTTPException(404, f"no review backtest {job_id!r} of camera {camera_id!r}")
        return job

    return r
