"""The dispatcher's aiokafka producer: built from the config and started, stopped with a bounded flush, or aborted.

Aborting is for a producer that cannot flush (the broker is gone): aiokafka has no public abort.
Written against aiokafka 0.11-0.14 internals; if they change, the abort logs and leaves the
producer alone (a leak, not a loss: the records are still pending in the outbox).
"""
from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError

if TYPE_CHECKING:
    from bridge.kafka.dispatch import KafkaConfig

log = structlog.get_logger(__name__)


class KafkaConfigError(ValueError):
    """The producer cannot be built from the configuration; not retried."""


async def start_producer(cfg: KafkaConfig) -> AIOKafkaProducer:
    """A started producer for `cfg`. Raises KafkaConfigError when it cannot be built, and what
    `start()` raises (the broker is not there) after stopping the half-started one."""
    # Construction errors are configuration errors (e.g. missing compression library):
    # retrying cannot fix them, so they are not raised as connection failures.
    try:
        producer = AIOKafkaProducer(
            bootstrap_servers=cfg.bootstrap_servers,
            client_id=cfg.client_id,
            acks=cfg.acks,
            enable_idempotence=cfg.idempotent,
            compression_type=cfg.compression,
            linger_ms=cfg.linger_ms,
            max_batch_size=cfg.max_batch_bytes,
            max_request_size=cfg.max_request_size,
            request_timeout_ms=cfg.request_timeout_ms,
        )
    except (ValueError, RuntimeError) as exc:
        raise KafkaConfigError(f"kafka producer cannot be created with {cfg!r}: {exc}") from exc
    try:
        await producer.start()
    except BaseException:
        await stop_producer(producer, "after failed start", abort=False, timeout=cfg.stop_timeout_s)
        raise
    return producer


async def stop_producer(producer: AIOKafkaProducer, when: str, abort: bool, timeout: float) -> None:
    """Stop `producer`. With `abort`, or when flushing takes over `timeout` seconds, abort it.

    aiokafka's stop() waits until every queued batch is acknowledged, which never happens while
    the broker is unreachable (it retries forever). Aborting cancels its sender task, which ends
    stop(), then fails the batches it still holds. Their records are still pending in the outbox
    and will be sent again.
    """
    stopping = asyncio.ensure_future(producer.stop())
    try:
        if not abort:
            await asyncio.wait({stopping}, timeout=timeout)
            if not stopping.done():
                log.warning("kafka producer did not flush in time; aborting it", when=when, stop_timeout_s=timeout)
        if not stopping.done():
            cancel_sender(producer, when)
            await asyncio.wait({stopping}, timeout=timeout)
    finally:
        if not stopping.done():  # stuck, or we are being cancelled ourselves
            stopping.cancel()
            log.error("kafka producer could not be stopped cleanly", when=when)
        elif not stopping.cancelled() and stopping.exception() is not None:
            log.warning("kafka producer stop failed", when=when, error=repr(stopping.exception()))
        fail_queued(producer, when)


def cancel_sender(producer: AIOKafkaProducer, when: str) -> None:
    sender = getattr(producer, "_sender", None)
    task = getattr(sender, "sender_task", None)
    if sender is None:  # not the aiokafka layout this was written against
        log.error("cannot abort kafka producer: aiokafka internals changed", when=when)
    elif task is not None and not task.done():
        task.cancel()


def fail_queued(producer: AIOKafkaProducer, when: str) -> None:
    """Fail the batches a stopped producer still holds, so nothing waits on them forever.

    Written against aiokafka 0.11-0.14 internals (MessageAccumulator, MessageBatch); if
    they change, this logs and leaves the batches alone (a leak, not a loss: the records
    are still pending in the outbox).
    """
    accumulator = getattr(producer, "_message_accumulator", None)
    queued = getattr(accumulator, "_batches", None)
    in_flight = getattr(accumulator, "_pending_batches", None)
    if not isinstance(queued, dict) or not isinstance(in_flight, set):
        log.error("cannot abort kafka producer: aiokafka internals changed", when=when)
        return
    batches = set(in_flight).union(*queued.values())
    # A batch the sender took and put back for a retry still carries aiokafka's callback
    # that removes it from the in-flight set when it completes: put it there, or failing
    # it raises KeyError in that callback.
    in_flight.update(batches)
    accumulator.fail_all(KafkaConnectionError(f"producer aborted by the dispatcher ({when})"))
    for batch in batches:
        # fail_all also fails each batch's drain waiter, which nobody awaits any more.
        waiter = getattr(batch, "_drain_waiter", None)
        if isinstance(waiter, asyncio.Future) and waiter.done() and not waiter.cancelled():
            waiter.exception()
