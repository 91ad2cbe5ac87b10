"""Drain the outbox into Kafka.

`KafkaDispatcher.run()` reads undelivered rows from the `EventStore` in `seq` order, produces
them keyed by grid code, and marks delivered only the contiguous prefix of rows Kafka
acknowledged. So nothing is skipped and one key's events reach its partition in order; after a
failure the unacknowledged rest is sent again, which may duplicate a record (the duplicate
carries the same `event_id`: consumers de-duplicate on it).

The broker may be down when the service starts or go away later: the dispatcher logs, backs
off exponentially up to `retry_backoff_max_s`, reconnects and carries on where the outbox says.
A record Kafka refuses for good (too large, not authorised) is found and parked after
`park_after_attempts`, so the rows behind it flow on (bridge.store.parked_records).
Building, starting, stopping and aborting the producer: bridge.kafka.producer_lifecycle.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Literal

import structlog
from aiokafka import AIOKafkaProducer
from pydantic import BaseModel, ConfigDict, Field, model_validator

from bridge.bridge_metrics import DISPATCH_ERRORS, DISPATCH_SENT, OUTBOX_BACKLOG
from bridge.store.outbox import EventStore, StoreClosedError
from bridge.store.parked_records import Parking, RecordRefused, is_permanent
from bridge.kafka.producer_lifecycle import KafkaConfigError, start_producer, stop_producer

log = structlog.get_logger(__name__)


class KafkaConfig(BaseModel):
    """Where and how events are produced to Kafka."""

    model_config = ConfigDict(extra="forbid")

    bootstrap_servers: str | None = Field(
        None,
        description="Comma-separated `host:port` list of Kafka brokers. Unset: no Kafka, events "
        "are only kept in the embedded outbox/event log.",
    )
    topic: str = Field("xueliang.events", description="Topic the events are produced to.")
    client_id: str = Field("xueliang-ingest", description="Kafka client id, shown in broker logs.")
    feedback_topic: str | None = Field(
        "xueliang.feedback_actions", description="Topic of the platform's feedback (work order closed, verify "
        "request; see docs/asyncapi.yaml); null: no feedback consumer.")
    feedback_group: str = Field(
        "xueliang-ingest", description="Consumer group of the feedback consumer. Instances that run "
        "different cameras need a group each, so that each sees every feedback message.")
    acks: Literal["all", 1, 0] = Field(
        "all",
        description="Acknowledgements required: `all` (every in-sync replica), 1 (leader only), "
        "0 (none; delivery is not confirmed at all). Idempotence requires `all`.",
    )
    idempotent: bool = Field(
        True,
        description="Idempotent producer: the broker drops the producer's own retried "
        "duplicates. Turn off for brokers without InitProducerId support (e.g. Tansu).",
    )
    compression: Literal[None, "gzip", "snappy", "lz4", "zstd"] = Field(
        None, description="Record batch compression; snappy/lz4/zstd use `cramjam`."
    )
    batch_size: int = Field(
        500, ge=1, description="Outbox rows read and produced per round before acknowledging."
    )
    linger_ms: int = Field(
        5, ge=0, description="How long the producer waits to fill a batch before sending it."
    )
    max_batch_bytes: int = Field(
        262144, ge=1024, description="Largest producer record batch per partition, in bytes; keep it below "
        "the topic's `max.message.bytes`, or the broker refuses whole batches."
    )
    max_request_size: int = Field(
        1048576, ge=1024, description="Largest record the producer sends, in bytes; a larger one is refused "
        "for good (and parked) without being sent.")
    park_after_attempts: int = Field(
        3, ge=1, description="A record Kafka refuses for good (too large, topic not authorised, not "
        "serialisable) is parked after this many refusals of it alone; the records behind it flow on. "
        "Parked records are listed and re-sent with `xueliang outbox parked|resend` or the API.")
    request_timeout_ms: int = Field(
        30000, ge=1000, description="aiokafka request timeout (metadata, produce requests)."
    )
    ack_timeout_s: float = Field(
        30.0,
        gt=0,
        description="Longest wait for Kafka to acknowledge one round of records. aiokafka "
        "retries a produce request forever while the broker is unreachable, so this is what "
        "notices an outage mid-send: the round fails, the producer is discarded and the "
        "unacknowledged records are sent again after reconnecting.",
    )
    stop_timeout_s: float = Field(
        5.0,
        gt=0,
        description="How long stopping the producer may wait to flush; after that it is aborted "
        "(its unacknowledged records stay pending in the outbox).",
    )
    retry_backoff_s: float = Field(
        1.0, gt=0, description="First wait after a failure; doubles on each failure in a row."
    )
    retry_backoff_max_s: float = Field(
        15.0, gt=0, description="Longest wait between attempts while Kafka stays unreachable."
    )

    @model_validator(mode="after")
    def _check(self) -> KafkaConfig:
        if self.idempotent and self.acks != "all":
            raise ValueError(
                f"kafka: idempotent=true requires acks='all', got acks={self.acks!r}; "
                "set acks: all or idempotent: false"
            )
        if self.retry_backoff_max_s < self.retry_backoff_s:
            raise ValueError(
                f"kafka: retry_backoff_max_s ({self.retry_backoff_max_s}) is below "
                f"retry_backoff_s ({self.retry_backoff_s})"
            )
        return self


class DispatchError(RuntimeError):
    """A round of producing failed; the unacknowledged rows stay pending."""


class KafkaDispatcher:
    """Background task moving outbox rows to Kafka. Run it with `await dispatcher.run()`.

    Attributes, for health checks and tests:
      connected  -- a producer is started and the last round did not fail
      sent       -- rows acknowledged by Kafka and marked delivered, by this instance
      failures   -- failed connection attempts and failed rounds, by this instance
      backlog    -- undelivered rows at the last look
      last_error -- text of the most recent failure, or None
      failing_since -- time.monotonic() of the first failure since the last good round, or None
    """

    def __init__(
        self,
        store: EventStore,
        config: KafkaConfig,
        *,
        poll_interval_s: float = 1.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.store = store
        self.config = config
        self.poll_interval_s = poll_interval_s
        # The backoff wait between attempts; injectable so tests can simulate a long outage.
        self._sleep = sleep
        self.connected = False
        self.sent = 0
        self.failures = 0
        self.backlog = 0
        self.last_error: str | None = None
        self.failing_since: float | None = None
        self.parking = Parking(config.park_after_attempts)
        self._wake = asyncio.Event()
        self._producer: AIOKafkaProducer | None = None
        self._running = False

    @property
    def enabled(self) -> bool:
        return self.config.bootstrap_servers is not None

    def notify(self) -> None:
        """New rows were appended: drain now instead of at the next poll.

        Call from the event loop's thread (use `loop.call_soon_threadsafe` from others).
        """
        self._wake.set()

    async def run(self) -> None:
        """Drain the outbox until cancelled; then stop the producer cleanly."""
        if self._running:
            raise RuntimeError("KafkaDispatcher.run() is already running")
        self._running = True
        try:
            if not self.enabled:
                log.info("kafka dispatch disabled: no bootstrap_servers; events stay in the outbox")
                await asyncio.Event().wait()  # until cancelled
            await self._loop()
        finally:
            await self._disconnect()
            self._running = False

    # ------------------------------------------------------------------ internals

    async def _loop(self) -> None:
        failures_in_row = 0
        while True:
            if self._producer is None:
                try:
                    await self._connect()
                except (asyncio.CancelledError, StoreClosedError, KafkaConfigError):
                    raise
                except Exception as exc:  # KafkaConnectionError and friends: broker not there
                    failures_in_row += 1
                    await self._failed("kafka producer start failed", exc, failures_in_row)
                    continue
            # Clear before reading: an append after this point sets it again, so no wake is lost.
            self._wake.clear()
            try:
                more = await self._drain_once()
            except (asyncio.CancelledError, StoreClosedError):
                raise
            except Exception as exc:
                if isinstance(exc, RecordRefused) and exc.permanent:  # a poison record: bounded tries, then parked
                    attempts = self.parking.refused(exc, exc.rows_from_it)
                    if attempts is not None:
                        await self._disconnect(abort=True)  # its idempotence state saw the refusal
                        await self.parking.park(self.store, exc, attempts)
                        continue
                failures_in_row += 1
                # Start over with a fresh producer: its idempotence state and any half-sent
                # batches belong to the failed round.
                await self._disconnect(abort=True)
                await self._failed("kafka dispatch round failed", exc, failures_in_row)
                continue
            failures_in_row = 0
            self.failing_since = None
            if not more:
                await self._idle()

    async def _connect(self) -> None:
        cfg = self.config
        self._producer = await start_producer(cfg)
        self.connected = True
        log.info(
            "kafka producer connected",
            bootstrap_servers=cfg.bootstrap_servers,
            topic=cfg.topic,
            idempotent=cfg.idempotent,
            acks=cfg.acks,
        )

    async def _disconnect(self, abort: bool = False) -> None:
        producer, self._producer = self._producer, None
        self.connected = False
        if producer is not None:
            await stop_producer(producer, "on disconnect", abort=abort, timeout=self.config.stop_timeout_s)

    async def _failed(self, what: str, exc: BaseException, failures_in_row: int) -> None:
        self.failures += 1
        if self.failing_since is None:
            self.failing_since = time.monotonic()
        DISPATCH_ERRORS.inc()
        self.last_error = f"{what}: {exc!r}"
        delay = min(
            self.config.retry_backoff_s * 2 ** (failures_in_row - 1),
            self.config.retry_backoff_max_s,
        )
        log.warning(
            what,
            error=repr(exc),
            cause=repr(exc.__cause__) if exc.__cause__ else None,
            bootstrap_servers=self.config.bootstrap_servers,
            failures_in_row=failures_in_row,
            retry_in_s=round(delay, 2),
        )
        await self._refresh_backlog()
        await self._sleep(delay)

    async def _idle(self) -> None:
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=self.poll_interval_s)
        except asyncio.TimeoutError:
            await self._refresh_backlog()

    async def _refresh_backlog(self) -> None:
        try:
            self.backlog = await self.store.backlog()
        except StoreClosedError:
            raise
        except Exception as exc:
            log.warning("outbox backlog query failed", error=repr(exc))
            return
        OUTBOX_BACKLOG.set(self.backlog)

    async def _drain_once(self) -> bool:
        """One round: produce up to batch_size rows. True if more rows are probably waiting."""
        records = await self.store.pending(self.parking.round_size(self.config.batch_size))
        if not records:
            self.backlog = 0
            OUTBOX_BACKLOG.set(0)
            return False
        producer = self._producer
        assert producer is not None
        topic = self.config.topic

        futures: list[asyncio.Future] = []
        send_error: BaseException | None = None
        for rec in records:
            try:
                fut = await producer.send(
                    topic, value=rec.payload, key=rec.key.encode("utf-8"), headers=rec.headers
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # e.g. KafkaTimeoutError: no metadata / buffer full; or the record itself
                send_error = RecordRefused(
                    f"could not enqueue outbox seq {rec.seq} (key {rec.key!r}) for topic "
                    f"{topic!r}: {exc!r}", rec.seq, is_permanent(exc, at_send=True), alone=True
                )
                send_error.__cause__ = exc
                break
            # Only the first failure is reported below; mark every other one as retrieved,
            # including futures failed later when a stuck producer is aborted.
            fut.add_done_callback(_retrieve_exception)
            futures.append(fut)

        if futures:
            await asyncio.wait(futures, timeout=self.config.ack_timeout_s)

        acked: list[int] = []
        ack_error: BaseException | None = None
        for rec, fut in zip(records, futures):
            if not fut.done():
                ack_error = DispatchError(
                    f"no acknowledgement for outbox seq {rec.seq} (key {rec.key!r}) within "
                    f"ack_timeout_s={self.config.ack_timeout_s} (broker unreachable?)"
                )
                break
            if fut.cancelled():
                ack_error = DispatchError(
                    f"delivery of outbox seq {rec.seq} (key {rec.key!r}) was cancelled by aiokafka"
                )
                break
            exc = fut.exception()
            if exc is not None:  # a batch is refused whole: alone, the row is the culprit
                ack_error = RecordRefused(
                    f"kafka refused outbox seq {rec.seq} (key {rec.key!r}) on topic "
                    f"{topic!r}: {exc!r}", rec.seq, is_permanent(exc), alone=len(records) == 1,
                    rows_from_it=len(records) - len(acked)
                )
                ack_error.__cause__ = exc
                break
            acked.append(rec.seq)

        if acked:
            await self.store.mark_delivered(acked)
            self.sent += len(acked)
            DISPATCH_SENT.inc(len(acked))
        await self._refresh_backlog()

        error = ack_error or send_error
        if error is not None:
            if len(acked) < len(futures):
                log.info(
                    "unacknowledged rows will be sent again",
                    acknowledged=len(acked),
                    attempted=len(records),
                    first_pending_seq=records[len(acked)].seq,
                )
            raise error
        self.parking.delivered_alone()
        log.debug("dispatched", count=len(acked), first_seq=acked[0], last_seq=acked[-1])
        return len(records) >= self.config.batch_size


def _retrieve_exception(fut: asyncio.Future) -> None:
    if not fut.cancelled():
        fut.exception()
