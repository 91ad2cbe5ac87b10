"""Sensor rules over Kafka: each sensor's readings meet in one worker, whichever received them.

MQTT shared subscriptions split the feeds: the broker hands each message to one worker of the
group, message by message, so one sensor's readings land on every worker. Rules need them all
(durations, hysteresis, rates), so in cluster mode the receiving worker only decodes, dead-
letters, and forwards readings to the readings topic, keyed and partitioned by sensor id; the
MQTT acknowledgement waits for Kafka's. A consumer group on that topic gives each sensor's
partition to one worker, which holds one rule engine per partition. A partition's new owner
rebuilds its engine by replaying the partition's recent readings without emitting (incident
ids come from reading times, so the rebuilt incidents are the ones already reported), then
carries on from the committed offset.
"""
from __future__ import annotations

import asyncio
import base64
import json
import time
import zlib

import structlog
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from bridge.kafka.cluster_config import ClusterConfig
from bridge.kafka.dispatch import KafkaConfig
from bridge.kafka.group_consumer import GroupSpec, GroupStage
from bridge.kafka.topics import read_to_end
from bridge.sensor_feed import SensorRuntime
from ingest.sensor_decode import Reading

log = structlog.get_logger(__name__)


def partition_of(sensor_id: str, partitions: int) -> int:
    """Stable across processes and versions (Python's hash() is salted per process)."""
    return zlib.crc32(sensor_id.encode()) % partitions


def encode(r: Reading) -> bytes:
    return json.dumps({"sensor_id": r.sensor_id, "kind": r.kind, "values": r.values, "device_time": r.device_time,
                       "arrival_time": r.arrival_time, "raw": base64.b64encode(r.raw).decode(),
                       "topic": r.topic}).encode()


def decode(value: bytes) -> Reading:
    d = json.loads(value)
    return Reading(d["sensor_id"], d["kind"], d["values"], d["device_time"], d["arrival_time"],
                   base64.b64decode(d["raw"]), d["topic"])


class SensorStage(GroupStage):
    def __init__(self, kafka: KafkaConfig, cluster: ClusterConfig, runtime: SensorRuntime, worker: str,
                 partitions: int) -> None:
        self.kafka, self.cluster, self.runtime = kafka, cluster, runtime
        self.worker, self.partitions = worker, partitions
        self.topic = cluster.readings_topic
        self.producer: AIOKafkaProducer | None = None
        runtime.engines = {}
        runtime.forward = self.forward

    async def start(self) -> None:
        k = self.kafka
        self.producer = AIOKafkaProducer(bootstrap_servers=k.bootstrap_servers, acks="all", linger_ms=k.linger_ms,
                                         enable_idempotence=k.idempotent, client_id=f"{k.client_id}-{self.worker}")
        await self.producer.start()

    async def forward(self, readings: list[Reading]) -> None:
        """Readings to their sensors' partitions; returns once Kafka holds them all (then MQTT is acked)."""
        assert self.producer is not None
        futs = [await self.producer.send(self.topic, encode(r), key=r.sensor_id.encode(),
                                         partition=partition_of(r.sensor_id, self.partitions)) for r in readings]
        await asyncio.gather(*futs)

    async def run(self) -> None:
        c, k = self.cluster, self.kafka
        try:
            await self.consume(GroupSpec(k.bootstrap_servers, c.sensor_group, f"{k.client_id}-{self.worker}-sensors",
                                         self.topic, c.session_timeout_ms, c.heartbeat_interval_ms))
        finally:
            if self.producer is not None:
                await self.producer.stop()

    def takes(self, tp: TopicPartition) -> bool:
        return self.runtime.engines.get(tp.partition) is not None  # None: its engine is being rebuilt

    async def handle(self, tp: TopicPartition, records: list) -> None:
        await self.runtime.evaluate([decode(r.value) for r in records], self.runtime.engines[tp.partition])
        await self.commit_batch(tp, records)

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        for tp in revoked:
            self.runtime.engines.pop(tp.partition, None)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        assert self.consumer is not None
        now = time.time()
        for tp in assigned:
            sensors = {sid for sid in self.runtime.devices if partition_of(sid, self.partitions) == tp.partition}
            engine = self.runtime.new_engine(sensors, started_at=now)
            committed = await self.consumer.committed(tp) or 0
            replayed = 0
            if committed:
                try:
                    history = await read_to_end(self.kafka.bootstrap_servers, [tp], {tp: committed},
                                                committed_only=False)
                except KafkaError as exc:
                    log.error("sensors.rebuild_failed", partition=tp.partition, error=repr(exc))
                    history = []
                recent = [decode(r.value) for r in history]
                recent = [r for r in recent if r.arrival_time >= now - self.cluster.sensor_rebuild_s]
                await self.runtime.evaluate(recent, engine, emit=False)
                replayed = len(recent)
            self.runtime.engines[tp.partition] = engine
            log.info("sensors.partition_taken", worker=self.worker, partition=tp.partition, sensors=len(sensors),
                     replayed=replayed)
