"""A dispatcher in its own process, for the SIGKILL test: drain the outbox into Kafka, then exit.

    python -m tests.kill_child DB BOOTSTRAP TOPIC IDEMPOTENT(0|1) [MARK_DELAY_S]

MARK_DELAY_S stretches the moment between Kafka's acknowledgement and the outbox marking the
rows delivered (a slow disk), so a kill lands there for sure: the worst case for duplicates.
"""
from __future__ import annotations

import asyncio
import contextlib
import sys

from bridge.kafka.dispatch import KafkaConfig, KafkaDispatcher
from bridge.store.outbox import open_store


async def main(db: str, bootstrap: str, topic: str, idempotent: bool, delay_s: float) -> None:
    store = open_store(db, fsync=True)
    if delay_s > 0:
        mark = store.mark_delivered

        async def slow_mark(seqs):
            await asyncio.sleep(delay_s)
            return await mark(seqs)

        store.mark_delivered = slow_mark
    cfg = KafkaConfig(bootstrap_servers=bootstrap, topic=topic, idempotent=idempotent,
                      batch_size=100, linger_ms=20, retry_backoff_s=0.2, retry_backoff_max_s=1.0)
    dispatcher = KafkaDispatcher(store, cfg, poll_interval_s=0.1)
    task = asyncio.create_task(dispatcher.run())
    try:
        print("started", flush=True)
        while await store.backlog() > 0:
            await asyncio.sleep(0.05)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        store.close()
    print("drained", flush=True)


if __name__ == "__main__":
    db, bootstrap, topic, idem = sys.argv[1:5]
    delay = float(sys.argv[5]) if len(sys.argv) > 5 else 0.0
    asyncio.run(main(db, bootstrap, topic, idem == "1", delay))
