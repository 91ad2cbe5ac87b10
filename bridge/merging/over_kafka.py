"""The merge stage over Kafka: partitioned by grid, rebuilt from its input after a failover.

Workers publish their cameras' and sensors' incidents to the incidents topic keyed by grid code.
Every worker also runs this stage in one consumer group on that topic, so each grid's merge
state lives in exactly one place: the `MergeStage` of the partition the grid hashes to, the very
same class the single-process service runs.

- **Failover.** When a partition arrives, its state is rebuilt by replaying the partition from
  its beginning up to the group's committed offset, without output (that output went out
  before the commit). Then records are processed live from the committed offset.
- **Exactly once.** Each partition has its own transactional producer (`transactional_id` names
  the group, topic and partition): the merged events and the partition's offset commit go in one
  transaction, and a new owner's producer fences the old one and aborts its open transaction. On
  a broker without transactions (`exactly_once: false`) it is at least once: after a failover a
  record may be merged and sent again, with the same `event_id`.
- **Fencing by generation.** A camera's records carry the worker-group generation of their owner.
  Once a newer generation of a camera has been seen in a partition, older ones are dropped and
  counted: a worker that lost its camera cannot report for it any more.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import structlog
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from bridge.kafka.dispatch import KafkaConfig
from bridge.events.model import Event, record_headers
from bridge.kafka.group_consumer import GroupSpec, GroupStage, next_offsets
from bridge.kafka.topics import read_to_end
from bridge.merging.rewrite import MergeConfig, MergeStage
from bridge.bridge_metrics import MERGE_CONSUMED, MERGE_FENCED, MERGE_PARTITIONS, MERGE_REJECTED

log = structlog.get_logger(__name__)


@dataclass
class _Partition:
    stage: MergeStage
    generations: dict[str, int] = field(default_factory=dict)  # camera -> newest owner generation seen
    producer: AIOKafkaProducer | None = None


def event_headers(ev: Event) -> list[tuple[str, bytes]]:
    return record_headers(ev.schema_version, ev.category.code, ev.grid.code if ev.grid else None)


class KafkaMergeStage(GroupStage):
    refetch_pause_s = 0.1

    def __init__(self, kafka: KafkaConfig, merge: MergeConfig, *, source_topic: str, group: str, worker: str,
                 exactly_once: bool, session_timeout_ms: int, heartbeat_interval_ms: int) -> None:
        self.kafka, self.merge = kafka, merge
        self.source_topic, self.group, self.worker = source_topic, group, worker
        self.exactly_once = exactly_once
        self.session_timeout_ms, self.heartbeat_interval_ms = session_timeout_ms, heartbeat_interval_ms
        self.parts: dict[int, _Partition] = {}
        self.shared: AIOKafkaProducer | None = None  # at-least-once mode: one producer for all partitions
        self.merged = 0

    async def run(self) -> None:
        k = self.kafka
        if not self.exactly_once:
            self.shared = self._producer(None)
            await self.shared.start()
        await self.consume(GroupSpec(k.bootstrap_servers, self.group, f"{k.client_id}-{self.worker}-merge",
                                     self.source_topic, self.session_timeout_ms, self.heartbeat_interval_ms,
                                     max_records=500))

    def takes(self, tp: TopicPartition) -> bool:
        return tp.partition in self.parts  # not yet: its state is still being rebuilt

    async def handle(self, tp: TopicPartition, records: list) -> None:
        await self._process(tp, records)

    async def leaving(self) -> None:
        await self._drop(list(self.parts))
        if self.shared is not None:
            await self.shared.stop()

    def _producer(self, partition: int | None) -> AIOKafkaProducer:
        k = self.kafka
        txn = f"{self.group}-{self.source_topic}-{partition}" if partition is not None else None
        return AIOKafkaProducer(bootstrap_servers=k.bootstrap_servers, client_id=f"{k.client_id}-{self.worker}-merge",
                                acks="all", enable_idempotence=k.idempotent or txn is not None,
                                transactional_id=txn, linger_ms=k.linger_ms, compression_type=k.compression)

    # -- rebalance -------------------------------------------------------------------------------------
    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self._drop([tp.partition for tp in revoked])

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        for tp in assigned:
            await self._take(tp)
        MERGE_PARTITIONS.set(len(self.parts))

    async def _take(self, tp: TopicPartition) -> None:
        assert self.consumer is not None
        part = _Partition(MergeStage(self.merge))
        if self.exactly_once:
            # Starting the partition's transactional producer fences its previous owner and aborts
            # that owner's open transaction, before anything is read.
            part.producer = self._producer(tp.partition)
            await part.producer.start()
        committed = await self.consumer.committed(tp)
        replayed = 0
        if committed:
            for r in await read_to_end(self.kafka.bootstrap_servers, [tp], {tp: committed}, committed_only=False):
                self._merge(part, r)
                replayed += 1
        self.parts[tp.partition] = part
        log.info("merge.partition_taken", worker=self.worker, partition=tp.partition, replayed=replayed,
                 open_grids=len(part.stage.merger.by_grid))

    async def _drop(self, partitions: list[int]) -> None:
        for p in partitions:
            part = self.parts.pop(p, None)
            if part is not None and part.producer is not None:
                await part.producer.stop()
        MERGE_PARTITIONS.set(len(self.parts))

    # -- records ---------------------------------------------------------------------------------------
    def _merge(self, part: _Partition, r) -> Event | None:
        """One record into the partition's state; the merged event, or None if it is dropped."""
        try:
            ev = Event.model_validate_json(r.value)
        except (ValidationError, ValueError, TypeError) as exc:
            MERGE_REJECTED.inc()
            log.error("merge.bad_record", topic=r.topic, partition=r.partition, offset=r.offset, error=str(exc)[:500])
            return None
        cam, gen = ev.source.camera_id, ev.source.generation
        if cam is not None and gen is not None:
            newest = part.generations.get(cam, gen)
            if gen < newest:
                MERGE_FENCED.inc()
                log.warning("merge.fenced", camera=cam, generation=gen, newest=newest, worker=ev.source.worker,
                            event_id=ev.event_id, partition=r.partition, offset=r.offset)
                return None
            part.generations[cam] = gen
        return part.stage.apply(ev)

    async def _process(self, tp: TopicPartition, records: list) -> None:
        part = self.parts[tp.partition]
        out = [e for e in (self._merge(part, r) for r in records) if e is not None]
        MERGE_CONSUMED.inc(len(records))
        offsets = next_offsets(tp, records)
        topic = self.kafka.topic
        try:
            if part.producer is not None:
                async with part.producer.transaction():
                    for ev in out:
                        await part.producer.send(topic, ev.model_dump_json().encode(), key=ev.key.encode(),
                                                 headers=event_headers(ev))
                    await part.producer.send_offsets_to_transaction(offsets, self.group)
            else:
                assert self.shared is not None and self.consumer is not None
                futs = [await self.shared.send(topic, ev.model_dump_json().encode(), key=ev.key.encode(),
                                               headers=event_headers(ev)) for ev in out]
                await asyncio.gather(*futs)
                await self.consumer.commit(offsets)
            self.merged += len(out)
        except (KafkaError, OSError) as exc:
            # The state ran ahead of what was committed: start the partition again from its
            # committed offset, so nothing is skipped and nothing merged twice.
            log.error("merge.batch_failed", partition=tp.partition, records=len(records), error=repr(exc),
                      action="rebuilding the partition from its committed offset")
            await asyncio.sleep(1.0)
            await self._drop([tp.partition])
            assert self.consumer is not None
            if tp not in self.consumer.assignment():
                return  # revoked meanwhile (a failed commit often means that): its new owner rebuilds it
            await self._take(tp)
            committed = await self.consumer.committed(tp)
            if committed is not None:
                self.consumer.seek(tp, committed)
            else:
                await self.consumer.seek_to_beginning(tp)
