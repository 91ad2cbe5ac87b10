"""Kafka housekeeping the cluster shares: creating topics, reading partitions to an offset
(the consumer-group loop is `bridge.kafka.group_consumer`)."""
from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, for_code

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    compacted: bool


async def ensure_topics(bootstrap: str, specs: Iterable[TopicSpec], replication: int = 1) -> dict[str, int]:
    """Create the topics that are missing; return each topic's partition count as the broker has it.

    A topic that already exists keeps its partition count: the control and state topics must
    agree, so a mismatch is an error rather than something to repair behind the operator's back.
    """
    specs = list(specs)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        new = [NewTopic(s.name, s.partitions, replication,
                        topic_configs={"cleanup.policy": "compact"} if s.compacted else {})
               for s in specs if s.name not in existing]
        if new:
            # aiokafka returns per-topic errors rather than raising them.
            response = await admin.create_topics(new)
            raced, failed = [], []
            for topic, code, *rest in response.topic_errors:  # (topic, code, message) from v1 on
                message = rest[0] if rest else None
                if code == TopicAlreadyExistsError.errno:  # another worker created it a moment ago
                    raced.append(topic)
                elif code != 0:
                    failed.append(f"{topic}: {message or for_code(code).__name__}")
            if failed:
                raise RuntimeError(f"creating topics on {bootstrap} failed: " + "; ".join(failed))
            log.info("cluster.topics_created", topics=[t.name for t in new if t.name not in raced],
                     raced=raced)
        # A topic created a moment ago may still lack leaders (Kafka answers LEADER_NOT_AVAILABLE).
        deadline = asyncio.get_running_loop().time() + 10
        while True:
            meta = await admin.describe_topics([s.name for s in specs])
            counts = {m["topic"]: len(m["partitions"]) for m in meta if m["error_code"] == 0}
            missing = [s.name for s in specs if not counts.get(s.name)]
            if not missing or asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.5)
    finally:
        await admin.close()
    if missing:
        errors = {m["topic"]: for_code(m["error_code"]).__name__ for m in meta if m["error_code"]}
        raise RuntimeError(f"topics without partitions on {bootstrap}: "
                           + ", ".join(f"{t} ({errors.get(t, 'no partitions')})" for t in missing))
    return counts


async def read_to_end(bootstrap: str, partitions: list[TopicPartition],
                      stops: dict[TopicPartition, int] | None = None, committed_only: bool = True) -> list:
    """Every record of the given partitions from their beginning up to their end right now (or up
    to `stops[tp]`, exclusive), in offset order per partition."""
    if not partitions:
        return []
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                isolation_level="read_committed" if committed_only else "read_uncommitted")
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        if stops is not None:
            ends = {tp: min(ends[tp], stops.get(tp, ends[tp])) for tp in partitions}
        remaining = {tp for tp in partitions if ends[tp] > await consumer.position(tp)}
        out = []
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=1000)
            for tp, records in batch.items():
                out += [r for r in records if r.offset < ends[tp]]
            remaining = {tp for tp in remaining if await consumer.position(tp) < ends[tp]}
        return out
    finally:
        await consumer.stop()

