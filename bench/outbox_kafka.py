"""Outbox -> Kafka events/s with fsync on, against a real noida-db broker, side by side with a
bare aiokafka producer sending the same payloads with the same settings in the same run.

    python bench/outbox_kafka.py [--events 20000]

Three numbers: appending to the outbox (fsync=True, synchronous=FULL; one event per
transaction and append_many batches of 100), draining the outbox to Kafka (KafkaDispatcher,
idempotent, acks=all), and the bare producer (send() all, then wait for every ack). Target:
at least 5,000 events/s outbox -> Kafka.
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiokafka import AIOKafkaProducer  # noqa: E402

from bridge.kafka.dispatch import KafkaConfig, KafkaDispatcher  # noqa: E402
from bridge.store.outbox import open_store  # noqa: E402
from tests.brokers import NoidaKafka  # noqa: E402
from tests.test_outage import make_event  # noqa: E402


async def run(n: int) -> None:
    events = [make_event(i) for i in range(n)]
    with NoidaKafka() as broker, tempfile.TemporaryDirectory() as d:
        cfg = KafkaConfig(bootstrap_servers=broker.bootstrap, topic="bench.outbox")
        store = open_store(Path(d) / "outbox.db", fsync=True)
        try:
            k = min(n, 2000)
            t = time.perf_counter()
            for e in events[:k]:
                await store.append(e)
            single = k / (time.perf_counter() - t)
            t = time.perf_counter()
            for i in range(k, n, 100):
                await store.append_many(events[i:i + 100])
            batched = (n - k) / (time.perf_counter() - t)

            dispatcher = KafkaDispatcher(store, cfg, poll_interval_s=0.05)
            t = time.perf_counter()
            task = asyncio.create_task(dispatcher.run())
            while await store.backlog() > 0:
                await asyncio.sleep(0.01)
            drain = n / (time.perf_counter() - t)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            records = await store.pending(1)
            assert not records
        finally:
            store.close()

        payloads = [(e.key.encode(), e.model_dump_json().encode()) for e in events]
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, acks="all",
                                    enable_idempotence=True, linger_ms=cfg.linger_ms,
                                    max_batch_size=cfg.max_batch_bytes)
        await producer.start()
        try:
            t = time.perf_counter()
            futs = [await producer.send("bench.bare", value=v, key=k) for k, v in payloads]
            await asyncio.gather(*futs)
            bare = n / (time.perf_counter() - t)
        finally:
            await producer.stop()
    print(f"events: {n}, noida-db {broker.bootstrap}, fsync on (synchronous=FULL)")
    print(f"outbox append, 1 per transaction : {single:>9,.0f} events/s")
    print(f"outbox append_many, 100 per tx   : {batched:>9,.0f} events/s")
    print(f"outbox -> Kafka (KafkaDispatcher) : {drain:>9,.0f} events/s  target 5,000/s "
          f"{'met' if drain >= 5000 else 'NOT met'}")
    print(f"bare aiokafka producer, same data : {bare:>9,.0f} events/s  ratio ours/bare {drain / bare:.2f}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=20_000)
    asyncio.run(run(ap.parse_args().events))
