"""Where every event goes: merge, suppression, the outbox, then the live stream and the dispatcher.

Cameras (`bridge/cameras.py`), sensors, feedback answers and a restart's clears all `publish`
here. An event is merged with the other sources' records of the same incident (single-process
mode; clustered, the merge runs on the incidents topic), checked against the closed work orders
(`SuppressionGate`: kept, queryable, never sent), and committed to the outbox (`OutboxWriter`,
which holds it while the disk is full). Only once committed (`stored`) does it reach the console's
live stream (`Hub`) and wake the Kafka dispatcher (`bridge/kafka/dispatch.py`).
"""
from __future__ import annotations

import asyncio
import time

import structlog

from bridge.bridge_metrics import EVENTS, SUPPRESSED
from bridge.events.model import Event
from bridge.feedback.messages import SuppressionGate
from bridge.http.hub import Hub
from bridge.kafka.dispatch import KafkaDispatcher
from bridge.merging.rewrite import MergeStage
from bridge.store.outbox import EventStore
from bridge.store.outbox_writer import OutboxWriter

log = structlog.get_logger(__name__)


class EventSink:
    def __init__(self, store: EventStore, hub: Hub, gate: SuppressionGate) -> None:
        """The root connects the rest as it builds it: `writer` (made with `stored` as its callback),
        `merge` (None when clustered) and `dispatcher` (None without Kafka)."""
        self.store, self.hub, self.gate = store, hub, gate
        self.writer: OutboxWriter | None = None
        self.merge: MergeStage | None = None
        self.dispatcher: KafkaDispatcher | None = None

    async def publish(self, event: Event) -> None:
        """Commit to the outbox first; only then tell the live stream and the dispatcher."""
        assert self.writer is not None
        if self.merge is not None:  # the same incident seen by several sources: one record
            event = self.merge.apply(event)
        suppressed = self.gate.check(event, time.time())
        await self.writer.append(event, suppressed)  # calls `stored` once committed: now, or after a full disk

    async def stored(self, seq: int, event: Event, suppressed: str | None) -> None:
        if suppressed is not None:  # kept, queryable, never sent: the platform closed its work order
            SUPPRESSED.labels(event.status, event.category.code).inc()
            log.info("event suppressed", status=event.status, category=event.category.code,
                     camera=event.source.camera_id, incident=event.incident_id, reason=suppressed)
            return
        EVENTS.labels(event.status, event.category.code).inc()
        self.hub.publish(seq, event.model_dump(mode="json"))
        if self.dispatcher is not None:
            self.dispatcher.notify()
        log.info("event", status=event.status, category=event.category.code, camera=event.source.camera_id,
                 sensor=event.source.sensor_id,
                 grid=event.grid.code if event.grid else None, incident=event.incident_id)

    async def drain(self, timeout_s: float) -> None:
        """Wait until the dispatcher has sent the outbox's backlog (a cluster hand-over), or give up."""
        deadline = time.monotonic() + timeout_s
        while self.dispatcher is not None and time.monotonic() < deadline:
            if not await self.store.backlog():
                return
            self.dispatcher.notify()
            await asyncio.sleep(0.05)
        if self.dispatcher is not None:
            log.warning("cluster.outbox_not_drained", timeout_s=timeout_s,
                        note="the rest goes out later, under the old generation, and is fenced if a newer owner spoke")
