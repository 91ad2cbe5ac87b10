"""Feedback in a cluster: every worker hears every message; the camera's owner answers.

The platform's feedback names a merged incident (`incident_id` of the events it received), which
no single worker's outbox knows: a worker's outbox holds its own cameras' incidents, before the
merge, and a camera may have moved since. So each worker keeps an `IncidentDirectory`: the latest
event of every incident on the dispatch topic (the very records the platform reads, with every
merged source), read from `cluster.feedback_lookback_s` back at start and followed live.

Every worker consumes the whole feedback topic (its own consumer group) and resolves each message
through the directory:

- `work_order_closed`: every worker applies the suppression window to all the incident's sources,
  so whichever worker runs a source camera now, or later after a failover, holds its next
  incidents back (each keeps the windows in its own outbox, as a single process does).
- `verify_request`: every worker picks the same camera for it (one of the incident's cameras that
  still sees it, else the latest), and only the worker running that camera now, by the live
  assignment, answers. A worker that does not run it watches for it until the request is too old
  (`feedback.verify_max_age_s`): if the camera is assigned to it meanwhile (a rebalance), it
  answers then; a worker that lets the camera go hands its unanswered requests to the watch list,
  where the new owner's copy of the same message is waiting. A request the old owner answered
  just before it let the camera go is seen answered on the dispatch topic (the release drains the
  outbox first) and is not answered again. So one request gets one answer, from the camera's
  owner, across a failover too; only an answer still on its way when the new owner's next frame
  comes can make a second one, with the same `request_id`.
"""
from __future__ import annotations

import asyncio
import time
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from bridge.kafka.dispatch import KafkaConfig
from bridge.events.model import Event

log = structlog.get_logger(__name__)


class IncidentDirectory:
    """incident id -> its latest event on the dispatch topic (without evidence URLs), for a while."""

    def __init__(self, kafka: KafkaConfig, *, lookback_s: float, read_committed: bool, client_id: str) -> None:
        self.kafka, self.lookback_s, self.read_committed, self.client_id = kafka, lookback_s, read_committed, client_id
        self.latest: dict[str, dict[str, Any]] = {}
        self.answered: dict[str, float] = {}  # verify requests answered on the topic -> when that was read
        self._seen: dict[str, float] = {}  # incident id -> when its latest event was read (for pruning)
        self._positions: dict[TopicPartition, int] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._ready = asyncio.Event()

    async def run(self) -> None:
        """Follow the dispatch topic until cancelled; reconnects with backoff while Kafka is unreachable."""
        failures = 0
        while True:
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self.kafka.bootstrap_servers, client_id=self.client_id, group_id=None,
                enable_auto_commit=False, metadata_max_age_ms=5000,
                isolation_level="read_committed" if self.read_committed else "read_uncommitted")
            try:
                await consumer.start()
                await self._follow(consumer)
            except asyncio.CancelledError:
                raise
            except (KafkaError, OSError) as exc:
                failures += 1
                delay = min(self.kafka.retry_backoff_s * 2 ** (failures - 1), self.kafka.retry_backoff_max_s)
                log.warning("feedback.directory_failed", topic=self.kafka.topic, error=repr(exc), retry_in_s=delay)
                await asyncio.sleep(delay)
            finally:
                self._consumer = None
                await consumer.stop()

    async def _follow(self, consumer: AIOKafkaConsumer) -> None:
        topic = self.kafka.topic
        parts = None
        while not parts:  # the topic appears with the merge stage's first record
            await consumer.topics()  # refreshes the metadata
            parts = consumer.partitions_for_topic(topic)
            if not parts:
                self._ready.set()  # nothing to read yet: nothing to wait for either
                await asyncio.sleep(1.0)
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        since = int((time.time() - self.lookback_s) * 1000)
        try:
            starts = await consumer.offsets_for_times({tp: since for tp in tps})
        except KafkaError as exc:  # a broker without timestamp lookups: read all it keeps
            log.warning("feedback.directory_no_time_index", topic=topic, error=repr(exc),
                        action="reading from the beginning")
            starts = {}
            await consumer.seek_to_beginning(*tps)
        for tp in tps:
            if tp in self._positions:  # a reconnect: carry on where it was
                consumer.seek(tp, self._positions[tp])
            elif starts.get(tp) is not None:
                consumer.seek(tp, starts[tp].offset)
            elif tp in starts:  # nothing that recent
                await consumer.seek_to_end(tp)
        self._consumer = consumer
        log.info("feedback.directory_following", topic=topic, partitions=len(tps), lookback_s=self.lookback_s)
        next_prune = time.monotonic() + 60.0
        while True:
            batch = await consumer.getmany(timeout_ms=500, max_records=1000)
            for tp, records in batch.items():
                for r in records:
                    self._add(r)
                self._positions[tp] = records[-1].offset + 1 if records else self._positions.get(tp, 0)
            if not self._ready.is_set() and await self._caught_up(consumer, tps):
                self._ready.set()
            if time.monotonic() >= next_prune:
                next_prune = time.monotonic() + 60.0
                self._prune()

    def _add(self, r) -> None:
        try:
            ev = Event.model_validate_json(r.value)
        except (ValidationError, ValueError, TypeError) as exc:
            log.error("feedback.directory_bad_record", topic=r.topic, partition=r.partition, offset=r.offset,
                      error=str(exc)[:300])
            return
        if ev.status == "verified":
            if ev.verification is not None:
                self.answered[ev.verification.request_id] = time.time()
            return
        if ev.status == "reviewed":  # an operator's decision: not what the platform's incident looks like
            return
        self.latest[ev.incident_id] = ev.model_dump(mode="json", exclude={"evidence"}) | {
            "evidence": {"bbox": ev.evidence.bbox}}
        self._seen[ev.incident_id] = time.time()

    def _prune(self) -> None:
        cut = time.time() - self.lookback_s
        for iid in [i for i, t in self._seen.items() if t < cut]:
            del self._seen[iid], self.latest[iid]
        for rid in [r for r, t in self.answered.items() if t < cut]:
            del self.answered[rid]

    @staticmethod
    async def _caught_up(consumer: AIOKafkaConsumer, tps: list[TopicPartition]) -> bool:
        ends = await consumer.end_offsets(tps)
        return all(await consumer.position(tp) >= ends[tp] for tp in tps)

    async def lookup(self, incident_id: str, timeout_s: float = 15.0) -> dict[str, Any] | None:
        """The incident's latest event; one not read yet is waited for until the directory has read
        what the topic held when asked (the platform heard of it there), at most `timeout_s`."""
        if incident_id in self.latest:
            return self.latest[incident_id]
        deadline = time.monotonic() + timeout_s
        try:
            await asyncio.wait_for(self._ready.wait(), timeout_s)
            consumer = self._consumer
            if consumer is not None:
                tps = list(consumer.assignment())
                ends = await consumer.end_offsets(tps)
                while time.monotonic() < deadline and incident_id not in self.latest:
                    if all([await consumer.position(tp) >= ends[tp] for tp in tps]):
                        break
                    await asyncio.sleep(0.1)
        except (asyncio.TimeoutError, KafkaError) as exc:
            log.warning("feedback.directory_lookup_incomplete", incident=incident_id, error=repr(exc))
        return self.latest.get(incident_id)
