"""An MQTT subscriber on paho-mqtt 2.x, bridged onto asyncio, that loses nothing it accepted.

paho runs its network loop in its own thread. Each message goes into a bounded buffer; the event
loop takes it out in batches. When the buffer is full the paho thread waits, so it stops reading
the socket and the broker holds the rest (TCP and the broker's queue are the backpressure).

Acknowledgement is manual (`Client(manual_ack=True)`): a QoS 1 message is PUBACKed only when the
consumer calls `ack()` after it handled the message durably. If the service dies before that,
the broker still has the message in the persistent session (clean start off, session expiry)
and delivers it again on the next connect. A message acknowledged after a reconnect would
carry a packet id of the old connection, so acks of older connections are skipped: the broker
redelivers those (DUP set) and the consumer drops what it has already seen.

Subscriptions are sent on every connect (resubscribe), `$share/<group>/` prefixed when a group
is set so that instances split the feed.
"""
from __future__ import annotations

import asyncio
import ssl
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
import structlog
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.packettypes import PacketTypes

from ingest.sensor_config import MqttConfig

log = structlog.get_logger(__name__)

# CONNACK reasons that retrying will not fix: reported as MqttRefused at start-up.
_FATAL = {"Bad user name or password", "Not authorized", "Client identifier not valid",
          "Unsupported protocol version", "Banned", "Bad authentication method"}


class MqttRefused(RuntimeError):
    """The broker refused the connection for a reason retrying does not fix (e.g. credentials)."""


@dataclass(slots=True)
class Message:
    topic: str
    payload: bytes
    qos: int
    mid: int
    dup: bool
    arrival: float
    generation: int  # connection the message came on; acks only go back on the same one


@dataclass
class MqttStatus:
    connected: bool = False
    connects: int = 0
    last_error: str | None = None
    received: int = 0
    acked: int = 0
    since: float = 0.0


class MqttSource:
    def __init__(self, cfg: MqttConfig, filters: list[str]) -> None:
        self.cfg = cfg
        prefix = f"$share/{cfg.shared_group}/" if cfg.shared_group else ""
        self.subscriptions = [prefix + f for f in filters]
        self.status = MqttStatus(since=time.time())
        self._buf: deque[Message] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._generation = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeup: asyncio.Event | None = None
        self._waiting = False
        self._first: asyncio.Future[None] | None = None
        v5 = cfg.protocol == "5"
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=cfg.client_id,
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
            clean_session=None if v5 else cfg.clean_start, manual_ack=True,
        )
        if cfg.username is not None:
            self.client.username_pw_set(cfg.username, cfg.password.get_secret_value() if cfg.password else None)
        if cfg.tls is not None:
            t = cfg.tls
            self.client.tls_set(ca_certs=str(t.ca_file) if t.ca_file else None,
                                certfile=str(t.cert_file) if t.cert_file else None,
                                keyfile=str(t.key_file) if t.key_file else None, cert_reqs=ssl.CERT_REQUIRED)
            self.client.tls_insecure_set(t.insecure)
        self.client.reconnect_delay_set(cfg.reconnect_min_s, cfg.reconnect_max_s)
        # Unacknowledged QoS 1 messages the broker may send at once (MQTT 5 receive maximum).
        self.client.max_inflight_messages_set(min(cfg.queue_size, 65535))
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_connect_fail = self._on_connect_fail
        self.client.on_message = self._on_message

    @property
    def where(self) -> str:
        return f"mqtt{'s' if self.cfg.tls else ''}://{self.cfg.host}:{self.cfg.port}"

    # ---------------------------------------------------------------- paho thread side

    def _on_connect(self, client, userdata, flags, reason, properties) -> None:
        if reason.is_failure:
            self.status.last_error = f"{self.where} refused the connection: {reason}"
            log.error("mqtt.refused", broker=self.where, client_id=self.cfg.client_id, user=self.cfg.username,
                      reason=str(reason))
            if str(reason) in _FATAL:
                self._settle_first(MqttRefused(
                    f"{self.where} refused client {self.cfg.client_id!r} (user {self.cfg.username!r}): {reason}"))
            return
        with self._cond:
            self._generation += 1
        self.status.connected, self.status.last_error = True, None
        self.status.connects += 1
        log.info("mqtt.connected", broker=self.where, client_id=self.cfg.client_id,
                 session_present=flags.session_present, subscriptions=self.subscriptions)
        # Subscribe on every connect: a broker that lost the session (expiry, restart without
        # persistence) must learn the subscriptions again.
        v5 = self.cfg.protocol == "5"
        subs = [(s, mqtt.SubscribeOptions(qos=self.cfg.qos) if v5 else self.cfg.qos) for s in self.subscriptions]
        if subs:
            client.subscribe(subs)
        self._settle_first(None)

    def _on_connect_fail(self, client, userdata) -> None:
        self.status.last_error = f"{self.where} unreachable"
        log.warning("mqtt.connect_failed", broker=self.where)

    def _on_disconnect(self, client, userdata, flags, reason, properties) -> None:
        self.status.connected = False
        if not self._closed:
            self.status.last_error = f"disconnected: {reason}"
            log.warning("mqtt.disconnected", broker=self.where, reason=str(reason))

    def _on_message(self, client, userdata, msg: mqtt.MQTTMessage) -> None:
        m = Message(msg.topic, msg.payload, msg.qos, msg.mid, bool(msg.dup), time.time(), self._generation)
        with self._cond:
            while len(self._buf) >= self.cfg.queue_size and not self._closed:
                self._cond.wait(0.5)
            self._buf.append(m)
            self.status.received += 1
            wake = self._waiting
            self._waiting = False
        if wake and self._loop is not None:
            self._loop.call_soon_threadsafe(self._wakeup.set)  # type: ignore[union-attr]

    def _settle_first(self, exc: BaseException | None) -> None:
        fut, loop = self._first, self._loop
        if fut is None or loop is None:
            return

        def settle() -> None:
            if not fut.done():
                fut.set_exception(exc) if exc else fut.set_result(None)
        loop.call_soon_threadsafe(settle)

    # ---------------------------------------------------------------- event-loop side

    async def start(self) -> None:
        """Connect and start the network thread. Raises MqttRefused when the broker refuses us for
        good (credentials); an unreachable broker is retried in the background."""
        self._loop = asyncio.get_running_loop()
        self._wakeup = asyncio.Event()
        self._first = self._loop.create_future()
        props = None
        if self.cfg.protocol == "5":
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = self.cfg.session_expiry_s
            props.ReceiveMaximum = min(self.cfg.queue_size, 65535)
        kw: dict[str, Any] = {"clean_start": self.cfg.clean_start, "properties": props} if props else {}
        self.client.connect_async(self.cfg.host, self.cfg.port, keepalive=self.cfg.keepalive_s, **kw)
        self.client.loop_start()
        try:
            await asyncio.wait_for(asyncio.shield(self._first), self.cfg.connect_timeout_s)
        except asyncio.TimeoutError:
            log.warning("mqtt.not_yet_connected", broker=self.where, waited_s=self.cfg.connect_timeout_s,
                        error=self.status.last_error)
        except MqttRefused:
            self.stop()
            raise

    async def get_batch(self, max_n: int = 1000) -> list[Message]:
        """Wait for at least one message; return up to `max_n` in arrival order."""
        assert self._wakeup is not None, "start() first"
        while True:
            with self._cond:
                if self._buf:
                    n = min(max_n, len(self._buf))
                    batch = [self._buf.popleft() for _ in range(n)]
                    self._cond.notify_all()
                    return batch
                self._waiting = True
                self._wakeup.clear()
            await self._wakeup.wait()

    def ack(self, messages: list[Message]) -> None:
        """PUBACK the QoS 1 messages of this connection, in order. Call only once they are handled."""
        gen = self._generation
        n = 0
        for m in messages:
            if m.qos > 0 and m.generation == gen:
                self.client.ack(m.mid, m.qos)
                n += 1
        self.status.acked += n

    def stop(self) -> None:
        """Disconnect without acknowledging anything further; the session keeps the rest."""
        self._closed = True
        with self._cond:
            self._cond.notify_all()
        self.client.disconnect()
        self.client.loop_stop()
        self.status.connected = False
