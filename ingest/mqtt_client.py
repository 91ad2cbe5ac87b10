"""The paho-mqtt 2.x client the MQTT source drives: built from `MqttConfig`, reading and acknowledging in bulk.

`make_client` sets up the session side (protocol, client id, clean start, manual acks, credentials,
TLS, receive maximum); `BulkClient` is paho's Client with the syscall-heavy paths replaced
(ingest.mqtt drives it from the event loop).
"""
from __future__ import annotations

import ssl
import struct

import paho.mqtt.client as mqtt
from paho.mqtt.client import PUBACK
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from ingest.sensor_input_config import MqttConfig

_RECV_CHUNK = 65536
_PUBACK = struct.Struct("!BBH")  # type, remaining length 2, packet id: the same in 3.1.1 and 5


class BulkClient(mqtt.Client):
    """paho's Client, reading and acknowledging in bulk, plus a way to close the socket.

    paho reads a packet with three recv() calls (type byte, length byte, body) and sends a PUBACK
    with one send() each: at tens of thousands of messages a second those syscalls are a third of
    its cost. Here the socket is read in 64 KiB chunks that paho's small reads are served from, and
    a batch of PUBACKs goes out as one write. These touch paho internals (`_sock_recv`,
    `_packet_read`, `_packet_queue`, `_loop_rc_handle`, `_sock_close`), kept here in one place;
    the MQTT tests against a real Mosquitto exercise every line.
    """

    _rbuf = b""
    _rpos = 0

    def reconnect(self) -> MQTTErrorCode:
        self._rbuf, self._rpos = b"", 0  # nothing of the old connection may leak into the new one
        return super().reconnect()

    def _sock_recv(self, bufsize: int) -> bytes:
        buf, pos = self._rbuf, self._rpos
        if pos >= len(buf):
            buf = super()._sock_recv(_RECV_CHUNK)  # BlockingIOError when dry, b"" at end of stream
            if not buf:
                return buf
            self._rbuf, pos = buf, 0
        self._rpos = pos + bufsize
        return buf[pos:pos + bufsize]

    def buffered(self) -> bool:
        """Bytes already read from the socket but not yet parsed (the selector cannot see them)."""
        return self._rpos < len(self._rbuf)

    def ack_many(self, mids: list[int]) -> None:
        """PUBACK these QoS 1 messages, in order, as one write (`manual_ack` mode)."""
        if mids:
            self._packet_queue(PUBACK, b"".join([_PUBACK.pack(PUBACK, 2, m) for m in mids]), 0, 1)

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        """Read up to `max_packets` whole packets, stopping when the socket has no more.

        paho's own loop_read ignores `max_packets` (it reads one packet per call for a
        subscriber), so every message would cost an event-loop round. This is its body with
        the argument honoured.
        """
        for _ in range(max(max_packets, 1)):
            if self._sock is None:
                return MQTTErrorCode.MQTT_ERR_NO_CONN
            rc = self._packet_read()
            if rc > 0:
                return self._loop_rc_handle(rc)
            if rc == MQTTErrorCode.MQTT_ERR_AGAIN:
                return MQTTErrorCode.MQTT_ERR_SUCCESS
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def close_socket(self) -> None:
        """Close the connection now (after `disconnect()` was sent), firing on_socket_close."""
        self._sock_close()


def make_client(cfg: MqttConfig) -> BulkClient:
    """A client for `cfg` with manual acknowledgement (a QoS 1 message is PUBACKed by `ack_many`),
    its credentials and TLS set, not connected yet."""
    v5 = cfg.protocol == "5"
    client = BulkClient(
        CallbackAPIVersion.VERSION2, client_id=cfg.client_id,
        protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
        clean_session=None if v5 else cfg.clean_start, manual_ack=True,
    )
    if cfg.username is not None:
        client.username_pw_set(cfg.username, cfg.password.get_secret_value() if cfg.password else None)
    if cfg.tls is not None:
        t = cfg.tls
        client.tls_set(ca_certs=str(t.ca_file) if t.ca_file else None,
                       certfile=str(t.cert_file) if t.cert_file else None,
                       keyfile=str(t.key_file) if t.key_file else None, cert_reqs=ssl.CERT_REQUIRED)
        client.tls_insecure_set(t.insecure)
    # Unacknowledged QoS 1 messages the broker may send at once (MQTT 5 receive maximum).
    client.max_inflight_messages_set(min(cfg.queue_size, 65535))
    return client
