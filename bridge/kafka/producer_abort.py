"""Aborting an aiokafka producer that cannot flush (the broker is gone): aiokafka has no public abort.

Written against aiokafka 0.11-0.14 internals; if they change, these log and leave the producer
alone (a leak, not a loss: the records are still pending in the outbox).
"""
from __future__ import annotations

import asyncio

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError

log = structlog.get_logger(__name__)


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
