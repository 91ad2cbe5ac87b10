"""Consumes the platform's feedback topic and hands each valid message to the service.

A message that cannot be acted on (not JSON, not a feedback message, an unknown incident) is
counted, logged with its topic, partition and offset, and skipped: the consumer never stops for
one bad message. There is no dead-letter topic yet; the log line carries the message's start.
Offsets are committed after a batch was handled, so a crash re-handles it (the handlers are
idempotent: a suppression window is only ever extended, a verify request is answered again).
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRecord

from bridge.kafka.dispatch import KafkaConfig
from bridge.feedback.messages import FeedbackError, Message, parse_feedback
from bridge.bridge_metrics import FEEDBACK, FEEDBACK_REJECTED

log = structlog.get_logger(__name__)

Handler = Callable[[Message, float], Awaitable[None]]  # (message, its Unix time)


class FeedbackConsumer:
    def __init__(self, config: KafkaConfig, handle: Handler) -> None:
        assert config.feedback_topic is not None
        self.config = config
        self.handle = handle
        self.handled = 0
        self.rejected = 0

    async def run(self) -> None:
        """Consume until cancelled; reconnects with backoff while Kafka is unreachable."""
        cfg = self.config
        failures = 0
        while True:
            consumer = AIOKafkaConsumer(
                cfg.feedback_topic, bootstrap_servers=cfg.bootstrap_servers, client_id=cfg.client_id,
                group_id=cfg.feedback_group, enable_auto_commit=False, auto_offset_reset="earliest",
                metadata_max_age_ms=5000,  # notice the topic soon after the platform creates it
            )
            try:
                await consumer.start()
                log.info("feedback consumer started", topic=cfg.feedback_topic, group=cfg.feedback_group)
                failures = 0
                while True:
                    batches = await consumer.getmany(timeout_ms=1000, max_records=100)
                    for records in batches.values():
                        for rec in records:
                            await self._one(rec)
                    if batches:
                        await consumer.commit()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # broker down or gone: start over with a fresh consumer
                failures += 1
                delay = min(cfg.retry_backoff_s * 2 ** (failures - 1), cfg.retry_backoff_max_s)
                log.warning("feedback consumer failed", error=repr(exc), topic=cfg.feedback_topic,
                            failures_in_row=failures, retry_in_s=delay)
                await asyncio.sleep(delay)
            finally:
                await self._stop(consumer)

    async def _one(self, rec: ConsumerRecord) -> None:
        where = {"topic": rec.topic, "partition": rec.partition, "offset": rec.offset}
        try:
            msg = parse_feedback(rec.value)
            FEEDBACK.labels(msg.type).inc()
            # The platform's send time; a broker without timestamps gives -1: then it is now.
            await self.handle(msg, rec.timestamp / 1000.0 if rec.timestamp > 0 else time.time())
            self.handled += 1
        except FeedbackError as exc:
            self.rejected += 1
            FEEDBACK_REJECTED.labels(exc.reason).inc()
            log.warning("feedback message rejected", reason=exc.reason, error=str(exc), **where)
        except Exception as exc:  # a handler bug must not stop feedback for everyone else
            self.rejected += 1
            FEEDBACK_REJECTED.labels("handler_error").inc()
            log.exception("feedback message failed", error=repr(exc), **where)

    @staticmethod
    async def _stop(consumer: AIOKafkaConsumer) -> None:
        try:
            await asyncio.shield(consumer.stop())
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("feedback consumer stop failed", error=repr(exc))
