"""The merge stage over Kafka on a real broker with transactions (noida-db): exactly once, state
rebuilt from the incidents topic when a partition moves, and an older owner generation fenced."""
from __future__ import annotations

import asyncio
import json

import pytest
from aiokafka import AIOKafkaProducer

from bridge.kafka.dispatch import KafkaConfig
from bridge.kafka.topics import TopicSpec, ensure_topics
from bridge.merging.over_kafka import KafkaMergeStage
from bridge.merging.rewrite import MergeConfig
from tests.cluster_harness import records
from tests.test_merge_stage import camera, event

SRC, OUT = "test.incidents", "test.events"


def stage(bootstrap: str, worker: str) -> KafkaMergeStage:
    return KafkaMergeStage(KafkaConfig(bootstrap_servers=bootstrap, topic=OUT), MergeConfig(radius_m=50, window_s=300),
                           source_topic=SRC, group="test-merge", worker=worker, exactly_once=True,
                           session_timeout_ms=6000, heartbeat_interval_ms=500)


def stamped(ev, worker: str, gen: int):
    return ev.model_copy(update={"source": ev.source.model_copy(update={"worker": worker, "generation": gen})})


async def send(bootstrap: str, events) -> None:
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await p.start()
    try:
        for ev in events:
            await p.send_and_wait(SRC, ev.model_dump_json().encode(), key=ev.key.encode())
    finally:
        await p.stop()


async def until(pred, timeout: float, what: str) -> None:
    for _ in range(int(timeout * 10)):
        if await pred():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.asyncio
async def test_merge_state_is_rebuilt_when_its_partition_moves_and_output_is_exactly_once(kafka_broker):
    b = kafka_broker.bootstrap
    await ensure_topics(b, [TopicSpec(SRC, 1, False), TopicSpec(OUT, 1, False)])
    a, c = camera("a", 0), camera("b", 30)  # 30 m apart, same grid: one incident
    first = stage(b, "m1")
    task = asyncio.create_task(first.run())
    await send(b, [stamped(event(a, "opened", "a1", 0), "w1", 1)])

    async def out_n(n):
        return len(await records(b, OUT)) >= n
    await until(lambda: out_n(1), 30, "the first merged event")
    task.cancel()  # a clean stop: the group hands the partition on
    await asyncio.gather(task, return_exceptions=True)

    second = stage(b, "m2")  # knows nothing but what it rebuilds from the topic
    task = asyncio.create_task(second.run())
    await send(b, [stamped(event(c, "opened", "b1", 20), "w2", 1),
                   stamped(event(a, "updated", "a1", 25), "w0", 0),  # an older owner of camera a: fenced
                   stamped(event(a, "cleared", "a1", 60), "w1", 1),
                   stamped(event(c, "cleared", "b1", 90), "w2", 1)])
    try:
        await until(lambda: out_n(4), 30, "the merged events after the move")
        await asyncio.sleep(1.0)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    out = [json.loads(r.value) for r in await records(b, OUT)]
    # Camera b's sighting joined camera a's incident: the rebuilt state knew a1 was open.
    assert [(e["incident_id"], e["status"], e["source"]["camera_id"]) for e in out] == [
        ("a1", "opened", "a"), ("a1", "updated", "b"), ("a1", "updated", "a"), ("a1", "cleared", "b")]
    assert len({e["event_id"] for e in out}) == 4  # each input once: nothing sent twice
    assert second.merged == 3
