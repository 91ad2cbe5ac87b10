"""The sensor feed on the service's event loop: MQTT -> decode -> rules -> events, and dead letters.

One batch at a time: decode every message, evaluate the readings, store the rejected ones in the
dead-letter store and commit the resulting events to the outbox, and only then acknowledge the
batch to the broker. A crash anywhere before the ack leaves the messages on the broker, which
delivers them again; repeats of a reading already handled are recognised and dropped. The rule
state itself lives in memory; after a restart, the incidents open in the outbox are carried on
under their ids (`bridge.resume`, `SensorEngine.adopt`), or cleared with a reason.
"""
from __future__ import annotations

import asyncio
import sqlite3
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Protocol

import structlog

from bridge.store.dead_letters import DeadLetter, DeadLetterStore
from bridge.events.model import Event
from bridge.events.builder import EventFactory, SensorContext, make_sensor_event
from detectors.lifecycle import IncidentChange
from detectors.sensor_engine import SensorEngine
from ingest.mqtt import MqttSource
from ingest.sensor_metrics import (
    MQTT_CONNECTED,
    MQTT_CONNECTS,
    MQTT_MESSAGES,
    SENSOR_DUPLICATES,
    SENSOR_READINGS,
    SENSOR_REJECTED,
)
from ingest.sensor_decode import Decoder, Reading, Rejected
from ingest.sensor_input_config import MqttConfig

log = structlog.get_logger(__name__)

Snapshot = Callable[[list[str], str], Awaitable[dict | None]]  # camera ids, label -> evidence items

_RECENT_PER_SENSOR = 256  # readings remembered per sensor to recognise repeats


class SensorSettings(Protocol):
    """What the sensor feed reads of the service's config (the root passes its `ServiceConfig`)."""

    mqtt: MqttConfig | None
    sensors: Any  # the `sensors:` section: topics, profiles, devices with their rules, limits, batching


class SensorRuntime:
    def __init__(self, cfg: SensorSettings, factory: EventFactory, deadletters: DeadLetterStore,
                 publish: Callable[[Event], Awaitable[None]], snapshot: Snapshot | None = None) -> None:
        assert cfg.mqtt is not None
        s = cfg.sensors
        self.cfg = cfg
        self.factory = factory
        self.deadletters = deadletters
        self.publish = publish
        self.snapshot = snapshot
        self.devices = {d.id: d for d in s.devices}
        self.contexts = {d.id: SensorContext(d.id, d.kind, d.location, {r.id: r.category for r in d.rules}, d.config_hash())
                         for d in s.devices}
        self.decoder = Decoder(s.topics, s.all_profiles(), {d.id: d.kind for d in s.devices}, s.limits)
        self.engine = SensorEngine({d.id: list(d.rules) for d in s.devices}, started_at=time.time())
        # Cluster mode: readings go to Kafka keyed by sensor (`forward`) and come back to the
        # worker that owns the sensor's partition (bridge/kafka/sensor_partitions.py), whose engines then
        # hold the rule state; this worker's own engine stays unused.
        self.forward: Callable[[list[Reading]], Awaitable[None]] | None = None
        self.engines: dict[int, SensorEngine] | None = None
        self.source = MqttSource(cfg.mqtt, [t.filter for t in s.topics])
        self.readings = 0
        self.duplicates = 0
        self.rejected = 0
        self._recent: dict[str, OrderedDict[tuple[float, bytes], None]] = {}
        self._kind_counters = {k: SENSOR_READINGS.labels(k) for k in {d.kind for d in s.devices}}
        self._connects_seen = 0
        self._inflight: asyncio.Future | None = None

    async def start(self) -> None:
        """Connect; raises ingest.mqtt.MqttRefused when the broker refuses the credentials."""
        await self.source.start()
        self._sync_gauges()

    async def run(self) -> None:
        """Handle messages until cancelled; call start() first."""
        ticker = asyncio.create_task(self._offline_loop(), name="sensors-offline")
        try:
            await self._consume()
        finally:
            if self._inflight is not None and not self._inflight.done():
                # Stopping mid-batch: finish it, so what was stored is also acknowledged.
                await asyncio.gather(self._inflight, return_exceptions=True)
            ticker.cancel()
            await asyncio.gather(ticker, return_exceptions=True)
            self.source.stop()

    async def _consume(self) -> None:
        batch_size = self.cfg.sensors.batch_size
        while True:
            batch = await self.source.get_batch(batch_size)
            self._inflight = asyncio.ensure_future(self._handle_and_ack(batch))
            await asyncio.shield(self._inflight)

    async def _handle_and_ack(self, batch) -> None:
        await self.handle(batch)
        self.source.ack(batch)
        self._sync_gauges()

    async def handle(self, batch) -> None:
        """Decode and evaluate a batch; dead letters and events (or, clustered, the readings in
        Kafka) are committed when this returns."""
        dead: list[Rejected] = []
        readings: list[Reading] = []
        for m in batch:
            r = self.decoder.decode(m.topic, m.payload, m.arrival)
            if type(r) is Rejected:
                dead.append(r)
            else:
                readings.append(r)
        MQTT_MESSAGES.inc(len(batch))
        if dead:
            await self._reject(dead)
        if self.forward is not None:
            await self.forward(readings)
        else:
            await self.evaluate(readings, self.engine)

    async def evaluate(self, readings: list[Reading], engine: SensorEngine, emit: bool = True) -> None:
        """Readings through the rules; the events are committed when this returns (unless not `emit`:
        a partition's state being rebuilt from its history)."""
        changes: list[list[IncidentChange]] = []
        per_kind: dict[str, int] = {}
        for r in readings:
            if self._repeat(r):
                continue
            per_kind[r.kind] = per_kind.get(r.kind, 0) + 1
            ch = engine.feed(r)
            if ch:
                changes.append(ch)
        if not emit:
            return
        for kind, n in per_kind.items():
            self._kind_counters[kind].inc(n)
            self.readings += n
        for chs in changes:
            await self._emit(chs)

    def _repeat(self, r: Reading) -> bool:
        """A reading with the device's own timestamp and the same bytes as a recent one is a repeat."""
        if r.device_time is None:
            return False  # without a device clock two equal payloads may be two real readings
        recent = self._recent.setdefault(r.sensor_id, OrderedDict())
        key = (r.device_time, r.raw)
        if key in recent:
            self.duplicates += 1
            SENSOR_DUPLICATES.inc()
            return True
        recent[key] = None
        if len(recent) > _RECENT_PER_SENSOR:
            recent.popitem(last=False)
        return False

    async def _reject(self, dead: list[Rejected]) -> None:
        for d in dead:
            SENSOR_REJECTED.labels(d.reason).inc()
            log.warning("sensor.rejected", reason=d.reason, detail=d.detail, topic=d.topic, sensor=d.sensor_id,
                        size=len(d.raw), payload=d.raw[:120].decode("utf-8", "backslashreplace"))
        self.rejected += len(dead)
        try:
            await self.deadletters.add([DeadLetter(d.arrival_time, d.topic, d.sensor_id, d.reason, d.detail, d.raw)
                                        for d in dead])
        except (sqlite3.OperationalError, OSError) as exc:  # a full disk: diagnostics go before events do
            log.error("deadletters.write_failed", messages=len(dead), error=repr(exc),
                      note="these rejected messages are counted and logged above, their payloads not kept")

    async def _emit(self, changes: list[IncidentChange]) -> None:
        for ch in changes:
            sid = ch.camera_id  # the lifecycle's source id is the sensor id
            ctx = self.contexts[sid]
            snapshot = None
            if ch.status == "opened" and self.snapshot is not None and self.devices[sid].cameras:
                try:
                    snapshot = await self.snapshot(self.devices[sid].cameras, f"{sid} {ch.rule_id}")
                except Exception:  # evidence is a bonus: the event goes out without it
                    log.exception("sensor.snapshot_failed", sensor=sid, cameras=self.devices[sid].cameras)
            occurred = datetime.fromtimestamp(ch.at).astimezone()
            await self.publish(make_sensor_event(self.factory, ch, ctx, occurred, snapshot))

    async def _offline_loop(self) -> None:
        while True:
            await asyncio.sleep(self.cfg.sensors.offline_check_s)
            now = time.time()
            for engine in (self.engines.values() if self.engines is not None else [self.engine]):
                changes = engine.tick(now)
                if changes:
                    await self._emit(changes)
            self._sync_gauges()

    def _sync_gauges(self) -> None:
        st = self.source.status
        MQTT_CONNECTED.set(1 if st.connected else 0)
        if st.connects > self._connects_seen:
            MQTT_CONNECTS.inc(st.connects - self._connects_seen)
            self._connects_seen = st.connects

    def engine_of(self, sensor_id: str) -> SensorEngine | None:
        if self.engines is None:
            return self.engine
        return next((e for e in self.engines.values() if e.has(sensor_id)), None)

    def new_engine(self, sensor_ids: set[str], started_at: float) -> SensorEngine:
        return SensorEngine({d.id: list(d.rules) for d in self.cfg.sensors.devices if d.id in sensor_ids}, started_at)

    def views(self) -> list[dict]:
        out = []
        for sid, dev in self.devices.items():
            engine = self.engine_of(sid)
            status = engine.status(sid) if engine is not None else {"note": "evaluated on another worker"}
            out.append({"id": sid, "kind": dev.kind, "name": dev.name, **status})
        return out
