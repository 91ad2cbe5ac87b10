"""The camera registry: a compacted Kafka topic whose partitions are the unit of camera ownership.

Key: the camera id. Value: the camera's config as JSON, as in a config file's `cameras:` entry;
a null value (tombstone) removes the camera. A camera keeps the partition it was first placed in
(compaction only works per partition) and a new camera goes to the least-loaded partition, so
the consumer group's partition assignment spreads cameras evenly over workers.
"""
from __future__ import annotations

import asyncio
from collections.abc import Iterable

import structlog
from aiokafka import AIOKafkaProducer, TopicPartition

from bridge.kafka.topics import TopicSpec, ensure_topics, read_to_end
from bridge.kafka.cluster_config import ClusterConfig

log = structlog.get_logger(__name__)


def cluster_topics(c: ClusterConfig) -> list[TopicSpec]:
    return [TopicSpec(c.control_topic, c.control_partitions, True),
            TopicSpec(c.state_topic, c.control_partitions, True),  # a camera's state sits in its own partition number
            TopicSpec(c.status_topic, c.control_partitions, True),
            TopicSpec(c.incidents_topic, c.incidents_partitions, False),
            TopicSpec(c.readings_topic, c.incidents_partitions, False)]


async def ensure_cluster_topics(bootstrap: str, c: ClusterConfig) -> dict[str, int]:
    """Create the cluster's topics where missing; each topic's partition count."""
    counts = await ensure_topics(bootstrap, cluster_topics(c), c.replication_factor)
    if len({counts[c.control_topic], counts[c.state_topic], counts[c.status_topic]}) != 1:
        raise RuntimeError(f"topics {c.control_topic}, {c.state_topic} and {c.status_topic} must have as many "
                           f"partitions as each other (a camera's state lives in its own partition number); "
                           f"the broker has {counts}")
    return counts


async def placements(bootstrap: str, topic: str, partitions: int) -> dict[str, tuple[int, bytes | None]]:
    """camera id -> (partition, latest value or None if removed)."""
    records = await read_to_end(bootstrap, [TopicPartition(topic, p) for p in range(partitions)], committed_only=False)
    out: dict[str, tuple[int, bytes | None]] = {}
    for r in sorted(records, key=lambda r: (r.partition, r.offset)):
        out[r.key.decode()] = (r.partition, r.value)
    return out


def place(existing: dict[str, int], new_ids: Iterable[str], partitions: int) -> dict[str, int]:
    """Partitions for cameras not placed yet: each to the least-loaded partition (lowest on a tie)."""
    load = [0] * partitions
    for p in existing.values():
        load[p] += 1
    out = {}
    for cid in new_ids:
        p = min(range(partitions), key=lambda i: (load[i], i))
        out[cid] = p
        load[p] += 1
    return out


async def publish(bootstrap: str, cluster: ClusterConfig, cameras: dict[str, bytes],
                  remove: Iterable[str] = (), idempotent: bool = True) -> dict[str, int]:
    """Write camera configs (id -> JSON) and tombstones; returns where each written camera lives."""
    counts = await ensure_cluster_topics(bootstrap, cluster)
    n = counts[cluster.control_topic]
    current = {cid: p for cid, (p, v) in (await placements(bootstrap, cluster.control_topic, n)).items() if v is not None}
    gone = [cid for cid in remove if cid in current]
    where = {cid: current[cid] for cid in cameras if cid in current}
    where |= place({c: p for c, p in current.items() if c not in gone}, [c for c in cameras if c not in current], n)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=idempotent)
    await producer.start()
    try:
        sends = [await producer.send(cluster.control_topic, value, key=cid.encode(), partition=where[cid])
                 for cid, value in cameras.items()]
        sends += [await producer.send(cluster.control_topic, None, key=cid.encode(), partition=current[cid])
                  for cid in gone]
        await asyncio.gather(*sends)
    finally:
        await producer.stop()
    log.info("registry.published", cameras=len(cameras), removed=gone, topic=cluster.control_topic)
    return where
