"""The consumer-group loop the cluster's three stages share: camera ownership on the registry
topic, the sensor rules on the readings topic and the merge on the incidents topic.

A stage subclasses `GroupStage`: it is its own rebalance listener (it sets a partition up in
`on_partitions_assigned` and lets it go in `on_partitions_revoked`), says whether a partition is
ready for records (`takes`), handles each partition's batch (`handle`, which commits when the
stage commits) and may act after every poll (`after_poll`) and before the consumer leaves the
group (`leaving`). The loop owns the rest: making the member, joining, polling, reading again
later what was fetched for a partition still being set up, and leaving the group on the way out.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition


def group_consumer(bootstrap: str, group: str, client_id: str, *, session_timeout_ms: int,
                   heartbeat_interval_ms: int) -> AIOKafkaConsumer:
    """A consumer-group member for the cluster's stages: offsets committed by hand, from the
    beginning when the group has none. Read uncommitted: the stages' input topics are written
    without transactions (and noida-db never advances the stable offset past an idempotent
    producer's records)."""
    return AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, client_id=client_id,
                            enable_auto_commit=False, auto_offset_reset="earliest",
                            isolation_level="read_uncommitted", session_timeout_ms=session_timeout_ms,
                            heartbeat_interval_ms=heartbeat_interval_ms)


@dataclass(frozen=True)
class GroupSpec:
    """Where a stage's member joins: broker, group, its client id, the one topic, the group's timing."""

    bootstrap: str
    group: str
    client_id: str
    topic: str
    session_timeout_ms: int
    heartbeat_interval_ms: int
    max_records: int = 1000  # per poll


class GroupStage(ConsumerRebalanceListener):
    """One member of a consumer group on one topic; subclasses add what their stage does."""

    consumer: AIOKafkaConsumer | None = None
    refetch_pause_s = 0.0  # after putting back records of a partition not ready yet

    async def consume(self, spec: GroupSpec) -> None:
        """Join the group and hand each polled batch to the stage until cancelled; then leave."""
        self.consumer = group_consumer(spec.bootstrap, spec.group, spec.client_id,
                                       session_timeout_ms=spec.session_timeout_ms,
                                       heartbeat_interval_ms=spec.heartbeat_interval_ms)
        await self.consumer.start()
        self.consumer.subscribe([spec.topic], listener=self)
        try:
            while True:
                batch = await self.consumer.getmany(timeout_ms=500, max_records=spec.max_records)
                for tp, records in batch.items():
                    if not records:
                        continue
                    if not self.takes(tp):
                        # Fetched while the partition is still being set up: read them again later.
                        if tp in self.consumer.assignment():
                            self.consumer.seek(tp, records[0].offset)
                            if self.refetch_pause_s:
                                await asyncio.sleep(self.refetch_pause_s)
                        continue
                    await self.handle(tp, records)
                await self.after_poll()
        finally:
            await self.leaving()
            await self.consumer.stop()

    async def commit_batch(self, tp: TopicPartition, records: list) -> None:
        """The partition's offset past this batch, committed for the group."""
        assert self.consumer is not None
        await self.consumer.commit(next_offsets(tp, records))

    def takes(self, tp: TopicPartition) -> bool:
        """Whether the partition is ready for records (False: they are read again later)."""
        return True

    async def handle(self, tp: TopicPartition, records: list) -> None:
        raise NotImplementedError

    async def after_poll(self) -> None:
        """After every poll, records or not."""

    async def leaving(self) -> None:
        """On the way out, before the consumer leaves the group."""


def next_offsets(tp: TopicPartition, records: list) -> dict[TopicPartition, int]:
    """The offset to commit after a partition's batch: the one past its last record."""
    return {tp: records[-1].offset + 1}
