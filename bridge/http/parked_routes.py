"""`/outbox/parked`: records Kafka refused for good, and re-sending them after the cause is fixed (admin)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, Field, model_validator

from bridge.store.outbox import EventStore
from bridge.store.parked_records import parked_count, parked_rows, release_rows
from bridge.http.security import principal, require


class ParkedPage(BaseModel):
    count: int = Field(description="Parked rows in all.")
    items: list[dict[str, Any]] = Field(description="Oldest first: seq, event_id, incident_id, status, category, grid, "
                                        "camera_id, key, error, attempts, parked_at (Unix time), payload_bytes.")


class ResendRequest(BaseModel):
    seqs: list[Annotated[int, Field(ge=1, le=2**63 - 1)]] | None = Field(
        None, max_length=10_000, description="The outbox seqs to re-send (SQLite row ids).", examples=[[42]])
    all: bool = Field(False, description="Re-send every parked row.")

    @model_validator(mode="after")
    def _one(self) -> ResendRequest:
        if self.all == bool(self.seqs):
            raise ValueError("give either `seqs` (a non-empty list) or `all: true`")
        return self


class ResendResult(BaseModel):
    resent: list[int] = Field(description="Seqs made pending again; they go out after the rows already queued.")


def parked_router(store: EventStore, notify: Callable[[], None] | None) -> APIRouter:
    r = APIRouter(tags=["outbox"])

    @r.get("/outbox/parked", response_model=ParkedPage, summary="Records Kafka refused for good, parked, oldest first.")
    async def parked(limit: int = Query(100, ge=1, le=1000)) -> ParkedPage:
        return ParkedPage(count=await store.on_connection(parked_count),
                          items=await store.on_connection(lambda db: parked_rows(db, limit)))

    @r.post("/outbox/parked/resend", response_model=ResendResult, dependencies=[Depends(require("admin"))],
            summary="Make parked records pending again, after fixing what made Kafka refuse them (admin).")
    async def resend(body: ResendRequest, request: Request) -> ResendResult:
        done = await store.on_connection(lambda db: release_rows(db, None if body.all else list(body.seqs or [])))
        if not body.all and not done:
            raise HTTPException(404, f"none of seqs {body.seqs} is parked")
        ctx = request.app.state.auth
        if ctx is not None:
            await ctx.audit(principal(request), "outbox.resend", None, {"seqs": done})
        if notify is not None:
            notify()
        return ResendResult(resent=done)

    return r
