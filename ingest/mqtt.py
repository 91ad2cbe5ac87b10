"""An MQTT subscriber on paho-mqtt 2.x, driven by the asyncio event loop, that loses nothing it accepted.

paho's socket is registered with the event loop (paho's "external event loop" interface:
`loop_read` / `loop_write` / `loop_misc` and the socket callbacks), so messages are read, handed
over and acknowledged on one thread. There is no network thread: on one core a second Python
thread doing a syscall per packet fights the consumer for the GIL and halves the throughput.
Only the blocking parts of (re)connecting (DNS, TCP connect, TLS handshake) run in a worker thread.
The client itself (built from the config, reading and acknowledging in bulk) is ingest.mqtt_client.

Each readable event reads every packet the socket holds (up to the room left in a bounded
buffer); when the buffer is full the socket is no longer watched, so TCP and the broker's queue
are the backpressure.

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
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
import structlog
from paho.mqtt.properties import Properties
from paho.mqtt.packettypes import PacketTypes

from ingest.mqtt_client import make_client
from ingest.sensor_input_config import MqttConfig

log = structlog.get_logger(__name__)

# CONNACK reasons that retrying will not fix: reported as MqttRefused at start-up.
_FATAL = {"Bad user name or password", "Not authorized", "Client identifier not valid",
          "Unsupported protocol version", "Banned", "Bad authentication method"}

_READ_BATCH = 1000  # packets read per readable event at most, so other tasks get their turn
_MISC_EVERY_S = 1.0  # keep-alive bookkeeping (PINGREQ, dead-connection check)


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
    """Use from one event loop: `await start()`, then `get_batch()` / `ack()`, then `stop()`."""

    def __init__(self, cfg: MqttConfig, filters: list[str]) -> None:
        self.cfg = cfg
        prefix = f"$share/{cfg.shared_group}/" if cfg.shared_group else ""
        self.subscriptions = [prefix + f for f in filters]
        self.status = MqttStatus(since=time.time())
        self._buf: deque[Message] = deque()
        self._closed = False
        self._generation = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._first: asyncio.Future[None] | None = None
        self._lost: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._misc: asyncio.TimerHandle | None = None
        self._sock: Any = None  # the socket watched for reading; None while paused or disconnected
        self._paused = False
        self._delay = float(cfg.reconnect_min_s)
        self.client = make_client(cfg)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_socket_close = self._on_socket_close
        self.client.on_socket_register_write = self._on_register_write
        self.client.on_socket_unregister_write = self._on_unregister_write

    @property
    def where(self) -> str:
        return f"mqtt{'s' if self.cfg.tls else ''}://{self.cfg.host}:{self.cfg.port}"

    # ---------------------------------------------------------------- paho callbacks (event-loop thread)

    def _on_connect(self, client, userdata, flags, reason, properties) -> None:
        if reason.is_failure:
            self.status.last_error = f"{self.where} refused the connection: {reason}"
            log.error("mqtt.refused", broker=self.where, client_id=self.cfg.client_id, user=self.cfg.username,
                      reason=str(reason))
            if str(reason) in _FATAL:
                self._settle_first(MqttRefused(
                    f"{self.where} refused client {self.cfg.client_id!r} (user {self.cfg.username!r}): {reason}"))
            return
        self._generation += 1
        self._delay = float(self.cfg.reconnect_min_s)
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

    def _on_disconnect(self, client, userdata, flags, reason, properties) -> None:
        self.status.connected = False
        if not self._closed:
            self.status.last_error = f"disconnected: {reason}"
            log.warning("mqtt.disconnected", broker=self.where, reason=str(reason))

    def _on_message(self, client, userdata, msg: mqtt.MQTTMessage) -> None:
        self._buf.append(Message(msg.topic, msg.payload, msg.qos, msg.mid, bool(msg.dup), time.time(),
                                 self._generation))

    def _on_socket_close(self, client, userdata, sock) -> None:
        if threading.get_ident() != self._loop_thread:
            return  # reconnect() in the worker closing a socket that was never watched
        self._detach(sock)
        if self._lost is not None:
            self._lost.set()

    def _on_register_write(self, client, userdata, sock) -> None:
        # From the connect worker (the CONNECT packet) the socket is not watched yet: _attach()
        # registers it for writing when paho still has something to send.
        if threading.get_ident() == self._loop_thread and self._sock is not None:
            self._loop.add_writer(sock, self._writable)  # type: ignore[union-attr]

    def _on_unregister_write(self, client, userdata, sock) -> None:
        if threading.get_ident() == self._loop_thread:
            self._loop.remove_writer(sock)  # type: ignore[union-attr]

    # ---------------------------------------------------------------- socket plumbing

    def _attach(self) -> None:
        sock = self.client.socket()
        if sock is None:
            return
        self._sock = sock
        self._paused = False
        self._loop.add_reader(sock, self._readable)  # type: ignore[union-attr]
        if self.client.want_write():
            self._loop.add_writer(sock, self._writable)  # type: ignore[union-attr]
        self._schedule_misc()

    def _detach(self, sock) -> None:
        loop = self._loop
        assert loop is not None
        loop.remove_reader(sock)
        loop.remove_writer(sock)
        self._sock = None
        self._paused = False
        if self._misc is not None:
            self._misc.cancel()
            self._misc = None

    def _readable(self) -> None:
        room = self.cfg.queue_size - len(self._buf)
        if room <= 0:
            self._pause()
            return
        n = len(self._buf)
        want = min(room, _READ_BATCH)
        self.client.loop_read(want)  # a lost connection closes the socket: _on_socket_close
        got = len(self._buf) - n
        self.status.received += got
        if got and self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
        if (got >= want or self.client.buffered()) and self._sock is not None:
            # Stopped at the cap, not because the socket ran dry: our read buffer (or TLS) may
            # hold bytes the selector cannot see, so come back without waiting for the socket.
            if len(self._buf) >= self.cfg.queue_size:
                self._pause()
            else:
                self._loop.call_soon(self._readable)  # type: ignore[union-attr]

    def _pause(self) -> None:
        if self._sock is not None and not self._paused:
            self._loop.remove_reader(self._sock)  # type: ignore[union-attr]
            self._paused = True

    def _resume(self) -> None:
        if self._paused and self._sock is not None and len(self._buf) < self.cfg.queue_size:
            self._paused = False
            self._loop.add_reader(self._sock, self._readable)  # type: ignore[union-attr]
            self._loop.call_soon(self._readable)  # type: ignore[union-attr]

    def _writable(self) -> None:
        self.client.loop_write()  # unregisters itself when nothing is left to send

    def _schedule_misc(self) -> None:
        self._misc = self._loop.call_later(_MISC_EVERY_S, self._tick)  # type: ignore[union-attr]

    def _tick(self) -> None:
        self._misc = None
        self.client.loop_misc()  # PINGREQ when due; closes a connection whose PINGRESP never came
        if self._sock is not None:
            self._schedule_misc()

    def _settle_first(self, exc: BaseException | None) -> None:
        fut = self._first
        if fut is not None and not fut.done():
            fut.set_exception(exc) if exc else fut.set_result(None)

    async def _connection(self) -> None:
        """Connect, wait until the connection is lost, back off, connect again, until stop()."""
        while not self._closed:
            self._lost = asyncio.Event()
            connecting = asyncio.ensure_future(asyncio.to_thread(self.client.reconnect))
            try:
                await asyncio.shield(connecting)
            except asyncio.CancelledError:
                # stop() while the worker connects: close what it opens once it is done.
                connecting.add_done_callback(self._close_late)
                raise
            except OSError as exc:  # refused, unreachable, DNS, TLS (ssl.SSLError is an OSError)
                self.status.last_error = f"{self.where} unreachable: {exc}"
                log.warning("mqtt.connect_failed", broker=self.where, error=str(exc))
            else:
                if self._closed:
                    break
                self._attach()
                await self._lost.wait()
            if self._closed:
                break
            await asyncio.sleep(self._delay)
            self._delay = min(self._delay * 2, float(self.cfg.reconnect_max_s))

    def _close_late(self, connecting: asyncio.Future) -> None:
        if not connecting.cancelled() and connecting.exception() is None:
            self.client.close_socket()

    # ---------------------------------------------------------------- consumer side

    async def start(self) -> None:
        """Connect (retrying in the background while the broker is unreachable). Raises
        MqttRefused when the broker refuses us for good (credentials)."""
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._first = self._loop.create_future()
        props = None
        if self.cfg.protocol == "5":
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = self.cfg.session_expiry_s
            props.ReceiveMaximum = min(self.cfg.queue_size, 65535)
        kw: dict[str, Any] = {"clean_start": self.cfg.clean_start, "properties": props} if props else {}
        # Only records the parameters; _connection() does the connecting.
        self.client.connect_async(self.cfg.host, self.cfg.port, keepalive=self.cfg.keepalive_s, **kw)
        self._task = asyncio.create_task(self._connection(), name="mqtt-connection")
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
        assert self._loop is not None, "start() first"
        while not self._buf:
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        buf = self._buf
        if len(buf) <= max_n:
            batch = list(buf)
            buf.clear()
        else:
            batch = [buf.popleft() for _ in range(max_n)]
        if self._paused:
            self._resume()
        return batch

    def ack(self, messages: list[Message]) -> None:
        """PUBACK the QoS 1 messages of this connection, in order. Call only once they are handled."""
        gen = self._generation
        mids = [m.mid for m in messages if m.qos > 0 and m.generation == gen]
        self.client.ack_many(mids)
        self.status.acked += len(mids)
        if mids and self._sock is not None:
            self.client.loop_write()  # send them now rather than on the next loop round

    def stop(self) -> None:
        """Disconnect without acknowledging anything further; the session keeps the rest.
        Call on the event loop's thread."""
        self._closed = True
        if self._task is not None:
            self._task.cancel()
        if self._lost is not None:
            self._lost.set()
        if self.client.socket() is not None:
            self.client.disconnect()
            self.client.loop_write()  # the DISCONNECT, so the broker ends the session cleanly
            self.client.close_socket()
        self.status.connected = False
