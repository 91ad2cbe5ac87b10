"""What the service does with the platform's feedback: suppression windows and verify requests.

Work orders closed: the incident's source keys get a suppression window, persisted in the outbox
database (a restart keeps it) and applied by the SuppressionGate in `EventSink.publish` (bridge/sink.py).
Verify requests: queued for the incident's camera; that camera's next analysed frame answers
(`CameraEvents.verification`). A request its camera cannot answer in `verify_timeout_s` is
answered with `still_present: null`, so every accepted request gets an answer.
Clustered, every worker hears every message and the camera's owner answers
(`bridge.feedback.incident_directory`).
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import datetime

import structlog

from bridge.bridge_config import FeedbackConfig
from bridge.events.model import Event
from bridge.feedback.messages import (FeedbackError, Message, SuppressionGate, VerifyRequest, WorkOrderClosed, WorkOrderState,
                             keys_of_stored)
from bridge.bridge_metrics import VERIFICATIONS
from bridge.store.outbox import EventStore
from bridge.feedback.verify import PendingVerification, verification_event
from bridge.feedback.work_orders import WorkOrderLog
from bridge.bridge_metrics import FEEDBACK_ELSEWHERE

log = structlog.get_logger(__name__)


class FeedbackHandler:
    """`cameras`: the cameras this instance runs (a set, or a callable giving the live set).

    `lookup` (cluster mode, `bridge.feedback.incident_directory`): the incident's latest event as the
    platform got it, merged over every worker; then a verify request goes to one camera chosen
    the same way on every worker, and a worker not running it watches for it instead of refusing.
    """

    def __init__(self, config: FeedbackConfig, store: EventStore, gate: SuppressionGate,
                 cameras: set[str] | Callable[[], set[str]], publish: Callable[[Event], Awaitable[None]],
                 lookup: Callable[[str], Awaitable[dict | None]] | None = None,
                 answered_elsewhere: Callable[[str], bool] | None = None, work_orders: WorkOrderLog | None = None) -> None:
        self.config, self.store, self.gate, self.publish, self.lookup = config, store, gate, publish, lookup
        self.answered_elsewhere = answered_elsewhere  # clustered: a request id answered on the dispatch topic
        self._cameras = cameras
        self.work_orders = work_orders  # work-order states for the console's clocks
        self._queued: dict[str, list[PendingVerification]] = {}  # camera id -> requests for its next frame
        self._watching: dict[str, list[tuple[PendingVerification, float]]] = {}  # clustered: camera -> (request, until)
        self._open: set[int] = set()  # id() of requests not answered yet
        self._until: dict[str, float] = {}  # clustered: request id -> when it is too old to answer
        self._timers: set[asyncio.Task] = set()

    @property
    def cameras(self) -> set[str]:
        return self._cameras() if callable(self._cameras) else self._cameras

    async def __call__(self, msg: Message, sent_at: float) -> None:
        incident = await self.lookup(msg.incident_id) if self.lookup is not None else None
        if incident is None:
            stored = await self.store.latest_of_incident(msg.incident_id)
            incident = stored.event if stored is not None else None
        if incident is None:
            where = "on the dispatch topic nor in the outbox" if self.lookup is not None else "in the outbox"
            raise FeedbackError("unknown_incident", f"{msg.type}: no incident {msg.incident_id!r} {where} "
                                f"{self.store.path}")
        if isinstance(msg, WorkOrderState):
            await self._state(msg.incident_id, msg.state, msg.at.timestamp() if msg.at else sent_at, msg.work_order_id)
        elif isinstance(msg, WorkOrderClosed):
            await self._state(msg.incident_id, "closed", sent_at, None)
            await self._closed(msg, incident, sent_at)
        else:
            self._verify(msg, incident, sent_at)

    async def _state(self, incident_id: str, state: str, at: float, work_order_id: str | None) -> None:
        if self.work_orders is None:
            return
        new = await asyncio.to_thread(self.work_orders.record, incident_id, state, at, work_order_id)
        log.info("work order state", incident=incident_id, state=state, at=at, work_order=work_order_id, new=new)

    async def _closed(self, msg: WorkOrderClosed, incident: dict, sent_at: float) -> None:
        until = sent_at + (msg.suppress_s or self.config.suppress_s)
        keys = keys_of_stored(incident)
        if until <= time.time():
            log.info("work order closed; its suppression window is already over", incident=msg.incident_id,
                     until=until)
            return
        await self.store.suppress(keys, until, msg.incident_id)
        self.gate.add(keys, until)
        log.info("work order closed; re-reporting suppressed", incident=msg.incident_id, keys=keys,
                 until=until, for_s=round(until - time.time(), 1))

    def _verify(self, msg: VerifyRequest, incident: dict, sent_at: float) -> None:
        age = time.time() - sent_at
        if age > self.config.verify_max_age_s:
            raise FeedbackError("stale", f"verify_request {msg.request_id!r} is {age:.0f} s old, more than "
                                f"feedback.verify_max_age_s={self.config.verify_max_age_s}")
        sources = incident.get("sources") or [{**incident["source"], "rule": incident["detector"]["rule"]}]
        runs = self.cameras
        # Clustered, every worker picks among all the cameras, so all pick the same one.
        mine = [s for s in sources if s.get("camera_id") and (self.lookup is not None or s["camera_id"] in runs)]
        if not mine:
            raise FeedbackError("not_here", f"verify_request {msg.request_id!r}: incident {msg.incident_id!r} "
                                f"has no camera run by this instance (sources: {sources})")
        src = next((s for s in mine if s.get("active")), mine[-1])  # one that still sees it, else the latest
        p = PendingVerification(msg.request_id, incident, src["camera_id"], src.get("zone"), src["rule"])
        if p.camera_id not in runs:  # clustered: another worker runs it now, or none does yet (a rebalance)
            until = sent_at + self.config.verify_max_age_s
            self._forget_stale()
            FEEDBACK_ELSEWHERE.inc()
            self._until[p.request_id] = until
            self._watching.setdefault(p.camera_id, []).append((p, until))
            log.info("verify request for a camera run elsewhere; watching", request=msg.request_id,
                     incident=msg.incident_id, camera=p.camera_id, until=round(until))
            return
        if self.lookup is not None:
            self._until[p.request_id] = sent_at + self.config.verify_max_age_s
        self._queue(p)

    def _queue(self, p: PendingVerification) -> None:
        self._queued.setdefault(p.camera_id, []).append(p)
        self._open.add(id(p))
        timer = asyncio.create_task(self._timeout(p), name=f"verify-timeout-{p.request_id}")
        self._timers.add(timer)
        timer.add_done_callback(self._timers.discard)
        log.info("verify request queued", request=p.request_id, incident=p.incident["incident_id"], camera=p.camera_id)

    def assigned(self, camera_ids: list[str]) -> None:
        """Clustered: cameras this worker runs from now on; the requests watched for them are its to answer."""
        now = time.time()
        for cid in camera_ids:
            for p, until in self._watching.pop(cid, []):
                if until > now:
                    self._queue(p)

    def released(self, camera_ids: list[str]) -> None:
        """Clustered: cameras this worker let go; their unanswered requests are the next owner's
        (which got the same messages), so they go back to watching here, unanswered."""
        for cid in camera_ids:
            for p in self._queued.pop(cid, []):
                self._open.discard(id(p))
                until = self._until.get(p.request_id, time.time() + self.config.verify_max_age_s)
                self._watching.setdefault(cid, []).append((p, until))
        self._forget_stale()

    def _forget_stale(self) -> None:
        """Watched requests too old to answer: another worker answered them, or nobody could."""
        now = time.time()
        for cid in list(self._watching):
            self._watching[cid] = [(p, u) for p, u in self._watching[cid] if u > now]
            if not self._watching[cid]:
                del self._watching[cid]
        for key in [k for k, u in self._until.items() if u <= now]:
            del self._until[key]

    def take(self, camera_id: str) -> list[PendingVerification]:
        """The requests the camera's current frame answers (called by the camera loop)."""
        taken = self._queued.pop(camera_id, []) if self._queued else []
        if self.answered_elsewhere is not None and taken:  # clustered: the camera's previous owner answered it
            done = [p for p in taken if self.answered_elsewhere(p.request_id)]
            for p in done:
                self._open.discard(id(p))
                log.info("verify request already answered by the camera's previous owner", request=p.request_id)
            taken = [p for p in taken if p not in done]
        return taken

    async def answered(self, p: PendingVerification, event: Event) -> None:
        if id(p) not in self._open:
            return  # the timeout answered first
        self._open.discard(id(p))
        v = event.verification
        result = "unknown" if v is None or v.still_present is None else ("present" if v.still_present else "gone")
        VERIFICATIONS.labels(result).inc()
        await self.publish(event)
        log.info("verification published", request=p.request_id, incident=event.incident_id, result=result)

    async def _timeout(self, p: PendingVerification) -> None:
        await asyncio.sleep(self.config.verify_timeout_s)
        if id(p) not in self._open:
            return
        if self.answered_elsewhere is not None and self.answered_elsewhere(p.request_id):
            self._open.discard(id(p))  # clustered: the camera's previous owner answered it
            return
        if p.camera_id in self._queued:
            self._queued[p.camera_id] = [q for q in self._queued[p.camera_id] if q is not p]
        reason = f"camera {p.camera_id} gave no analysed frame within {self.config.verify_timeout_s} s"
        await self.answered(p, verification_event(p, datetime.now().astimezone(), None, reason=reason))

    def close(self) -> None:
        for t in list(self._timers):
            t.cancel()
