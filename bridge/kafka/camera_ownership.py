"""Camera ownership over Kafka: the consumer group decides which worker runs which camera.

Every worker joins one consumer group on the registry (control) topic. The partitions it is
assigned are the cameras it runs: it reads them from their beginning (the topic is compacted, so
that is the current registry) and starts each camera once its partition is read to the end;
later records in those partitions add, change or remove cameras live.

No two workers run a camera at once:
- The group rebalances eagerly: every member gives up its partitions, and its cameras are
  stopped (and their open incidents written to the state topic) before it rejoins. A partition
  is handed out again only after everyone rejoined.
- A worker whose offset commit is refused (the group replaced it, e.g. after a pause) stops its
  cameras itself. One that cannot reach Kafka at all keeps them running (see `_prove_generation`).
- Every event, status and state record carries the worker and the group generation it owned
  the camera under, so an overlap would show in the data, and the merge stage drops a camera's
  records from an older generation once a newer one has spoken.

A camera's open incidents travel with it: the owner writes them to the state topic whenever one
opens or clears and when it lets the camera go; the next owner carries them on (see
`Lifecycle.adopt`). A camera that comes back to the worker that just had it keeps its memory.
"""
from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from pydantic import ValidationError

from bridge.bridge_metrics import (CLUSTER_CAMERAS, CLUSTER_FENCED_SELF, CLUSTER_GENERATION, CLUSTER_REBALANCES,
                                   CLUSTER_UNPROVEN)
from bridge.kafka.cluster_config import ClusterConfig
from bridge.kafka.dispatch import KafkaConfig
from bridge.kafka.group_consumer import GroupSpec, GroupStage
from bridge.kafka.topics import read_to_end
from ingest.redact import redact_text

log = structlog.get_logger(__name__)


Camera = Any  # the root's camera config (`xueliang.config.CameraConfig`); here only its `id` is read

# A registry record's value -> the camera, and what is wrong with it against the rest of the
# config as (field, message) pairs; raises pydantic's ValidationError on a malformed record.
CameraParser = Callable[[bytes], tuple[Camera, list[tuple[str, str]]]]


class CameraHost(Protocol):
    """What the ownership drives: the service's camera runtime."""

    async def start_cameras(self, cameras: list[Camera], generation: int, partition_of: dict[str, int],
                            states: dict[str, dict]) -> None: ...

    async def release_cameras(self, camera_ids: list[str]) -> None: ...

    def keep_parked(self, partitions: set[int]) -> None: ...


def generation_of(consumer: AIOKafkaConsumer) -> int:
    """The group generation this member holds now.

    aiokafka keeps it on its group coordinator and has no public accessor (the Java client's
    `groupMetadata()`), so this reads the attribute; it is set before the assignment callback.
    """
    return int(consumer._coordinator.generation)


@dataclass
class _Partition:
    end: int  # the registry is loaded once the position reaches this offset
    cameras: dict[str, Camera] = field(default_factory=dict)
    loaded: bool = False


class CameraOwnership(GroupStage):
    """`parse`: the root's reading of a registry record (the camera config and its problems)."""

    def __init__(self, kafka: KafkaConfig, cluster: ClusterConfig, host: CameraHost, worker: str,
                 parse: CameraParser) -> None:
        self.kafka, self.cluster, self.host, self.worker, self.parse = kafka, cluster, host, worker, parse
        self.generation = -1
        self.partitions: dict[int, _Partition] = {}
        self.running: set[str] = set()
        self._last_proof = time.monotonic()
        self._next_proof = 0.0
        self.invalid: dict[str, list[str]] = {}  # camera id -> why its registry record was refused

    async def run(self) -> None:
        """Run cameras as the group assigns them; the topics exist (`ensure_cluster_topics`)."""
        c, k = self.cluster, self.kafka
        await self.consume(GroupSpec(k.bootstrap_servers, c.group, f"{k.client_id}-{self.worker}", c.control_topic,
                                     c.session_timeout_ms, c.heartbeat_interval_ms))

    async def handle(self, tp: TopicPartition, records: list) -> None:
        for r in records:
            await self._record(tp.partition, r)

    async def after_poll(self) -> None:
        await self._start_loaded()
        if time.monotonic() >= self._next_proof:
            self._next_proof = time.monotonic() + self.cluster.fence_check_s
            await self._prove_generation()

    async def leaving(self) -> None:
        await self._release(list(self.partitions))

    # -- rebalance callbacks (awaited by aiokafka before it rejoins / after it joined) -------------
    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        CLUSTER_REBALANCES.inc()
        log.info("cluster.revoking", worker=self.worker, generation=self.generation, partitions=len(revoked))
        await self._release([tp.partition for tp in revoked])

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        assert self.consumer is not None
        self.generation = generation_of(self.consumer)
        CLUSTER_GENERATION.set(self.generation)
        self._last_proof = time.monotonic()
        tps = sorted(assigned, key=lambda tp: tp.partition)
        ends = await self.consumer.end_offsets(tps) if tps else {}
        self.host.keep_parked({tp.partition for tp in tps})
        for tp in tps:
            self.partitions[tp.partition] = _Partition(end=ends[tp])
        if tps:
            await self.consumer.seek_to_beginning(*tps)
        log.info("cluster.assigned", worker=self.worker, generation=self.generation,
                 partitions=[tp.partition for tp in tps])

    # -- registry records ---------------------------------------------------------------------------
    async def _record(self, partition: int, r) -> None:
        part = self.partitions.get(partition)
        if part is None:
            return
        cid = r.key.decode("utf-8", "replace") if r.key else None
        if cid is None:
            log.error("registry.record_without_key", partition=partition, offset=r.offset)
            return
        cam = self._parse(cid, partition, r.offset, r.value) if r.value is not None else None
        old = part.cameras.pop(cid, None)
        if cam is not None:
            part.cameras[cid] = cam
        if not part.loaded or old == cam:
            return
        # A live change: a removed or changed camera stops; a changed one starts again below.
        if cid in self.running:
            await self._stop([cid])
        if cam is not None:
            await self._start({partition: [cam]})

    def _parse(self, cid: str, partition: int, offset: int, value: bytes) -> Camera | None:
        where = f"{self.cluster.control_topic}[{partition}]@{offset}"
        try:
            cam, found = self.parse(value)
            problems = [f"{loc}: {msg}" for loc, msg in found]
            if cam.id != cid:
                problems.append(f"camera.id: {cam.id!r} differs from the record key {cid!r}")
        except ValidationError as exc:
            problems = [f"camera.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
        if problems:
            self.invalid[cid] = problems
            log.error("registry.invalid_camera", camera=cid, record=where, problems=[redact_text(p) for p in problems])
            return None
        self.invalid.pop(cid, None)
        return cam

    async def _start_loaded(self) -> None:
        assert self.consumer is not None
        ready = []
        for p, part in self.partitions.items():
            if not part.loaded and await self.consumer.position(TopicPartition(self.cluster.control_topic, p)) >= part.end:
                part.loaded = True
                ready.append(p)
        if ready:  # one read of the state topic for every partition that finished loading
            await self._start({p: list(self.partitions[p].cameras.values()) for p in ready})

    async def _start(self, by_partition: dict[int, list[Camera]]) -> None:
        cams = [c for cs in by_partition.values() for c in cs]
        if not cams:
            return
        states = await state_of(self.kafka.bootstrap_servers, self.cluster.state_topic,
                                sorted(by_partition), {x.id for x in cams})
        where = {c.id: p for p, cs in by_partition.items() for c in cs}
        await self.host.start_cameras(cams, self.generation, where, states)
        self.running.update(x.id for x in cams)
        CLUSTER_CAMERAS.set(len(self.running))

    async def _stop(self, ids: list[str]) -> None:
        await self.host.release_cameras(ids)
        self.running.difference_update(ids)
        CLUSTER_CAMERAS.set(len(self.running))

    async def _release(self, partitions: list[int]) -> None:
        ids = [cid for p in partitions if p in self.partitions for cid in self.partitions[p].cameras]
        for p in partitions:
            self.partitions.pop(p, None)
        if ids:
            await self._stop([i for i in ids if i in self.running])
            log.info("cluster.released", worker=self.worker, generation=self.generation, cameras=len(ids))

    # -- fencing --------------------------------------------------------------------------------------
    async def _prove_generation(self) -> None:
        """Commit positions with our generation: the coordinator refuses a member it has replaced.

        A refused commit stops every camera at once. An unanswered one does not: with Kafka
        unreachable the cameras keep running and their incidents queue in the outbox, because a
        worker cannot tell an outage of all of Kafka (no one else runs its cameras either, and
        stopping would blind the city) from being cut off alone. In the second case its records
        reach Kafka only after it is back, under its old generation, and the merge stage drops
        those a newer owner has overtaken; its first commit then is refused and it stops.
        """
        assert self.consumer is not None
        owned = [TopicPartition(self.cluster.control_topic, p) for p in self.partitions]
        if not owned:
            return
        try:
            positions = {tp: await self.consumer.position(tp) for tp in owned}
            # aiokafka retries a commit for as long as the coordinator is unreachable: bounded,
            # so the silence is logged and measured while it lasts.
            await asyncio.wait_for(self.consumer.commit(positions), self.cluster.session_timeout_ms / 1000)
        except CommitFailedError as exc:
            CLUSTER_FENCED_SELF.inc()
            log.error("cluster.fenced", worker=self.worker, generation=self.generation, reason=f"offset commit refused: {exc}",
                      action="stopping every camera until the group assigns them again")
            await self._release(list(self.partitions))
            return
        except (KafkaError, asyncio.TimeoutError, OSError) as exc:
            silent = time.monotonic() - self._last_proof
            CLUSTER_UNPROVEN.set(silent)
            log.warning("cluster.proof_failed", worker=self.worker, generation=self.generation, error=repr(exc),
                        unproven_s=round(silent, 1), action="cameras keep running; their events wait in the outbox")
            return
        self._last_proof = time.monotonic()
        CLUSTER_UNPROVEN.set(0.0)


async def state_of(bootstrap: str, topic: str, partitions: list[int], cameras: set[str]) -> dict[str, dict]:
    """Each camera's latest state record: the highest generation, then the latest write."""
    out: dict[str, dict] = {}
    for r in await read_to_end(bootstrap, [TopicPartition(topic, p) for p in partitions], committed_only=False):
        cid = r.key.decode("utf-8", "replace") if r.key else None
        if cid not in cameras or r.value is None:
            continue
        try:
            state = json.loads(r.value)
            gen = int(state["generation"])
        except (ValueError, KeyError, TypeError) as exc:
            log.error("cluster.bad_state_record", camera=cid, partition=r.partition, offset=r.offset, error=repr(exc))
            continue
        if cid not in out or gen >= out[cid]["generation"]:
            out[cid] = state
    return out


class ClusterRecords:
    """The worker's writes to the state and status topics, each to its camera's partition."""

    def __init__(self, kafka: KafkaConfig, cluster: ClusterConfig, worker: str) -> None:
        self.kafka, self.cluster, self.worker = kafka, cluster, worker
        self.producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        k = self.kafka
        self.producer = AIOKafkaProducer(bootstrap_servers=k.bootstrap_servers, client_id=f"{k.client_id}-{self.worker}",
                                         acks="all", enable_idempotence=k.idempotent, linger_ms=0)
        await self.producer.start()

    async def stop(self) -> None:
        if self.producer is not None:
            await self.producer.stop()

    async def state(self, camera_id: str, partition: int, generation: int, open_incidents: list[dict],
                    timeout_s: float = 5.0) -> bool:
        """Write a camera's open incidents; waits for the broker's ack (False after `timeout_s`)."""
        value = {"camera": camera_id, "worker": self.worker, "generation": generation, "at": time.time(),
                 "open": open_incidents}
        return await self._send(self.cluster.state_topic, camera_id, partition, value, timeout_s)

    async def status(self, camera_id: str, partition: int, generation: int, view: dict, timeout_s: float = 5.0) -> bool:
        value = {"camera": camera_id, "worker": self.worker, "generation": generation, "at": time.time(), **view}
        return await self._send(self.cluster.status_topic, camera_id, partition, value, timeout_s)

    async def _send(self, topic: str, key: str, partition: int, value: dict, timeout_s: float) -> bool:
        assert self.producer is not None
        try:
            fut = await self.producer.send(topic, json.dumps(value, default=str).encode(), key=key.encode(),
                                           partition=partition)
            await asyncio.wait_for(fut, timeout_s)
            return True
        except (KafkaError, asyncio.TimeoutError) as exc:
            log.warning("cluster.write_failed", topic=topic, camera=key, error=repr(exc))
            return False

