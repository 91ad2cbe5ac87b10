"""MqttSource on its own against a real Mosquitto: the socket is driven by the event loop, so these
check what paho's own thread used to do for us: reconnect and resubscribe after the broker went
away under a running source, and backpressure when the consumer is slower than the feed."""
from __future__ import annotations

import asyncio

from ingest.mqtt import MqttSource
from ingest.sensor_input_config import MqttConfig
from tests.mosquitto import USERS
from tests.test_mqtt_sensors import publish_all, publisher, until


def source(broker, client_id: str, *, tls: bool, **kw) -> MqttSource:
    return MqttSource(MqttConfig(port=broker.tls_port if tls else broker.port, client_id=client_id,
                                 username="ingest", password=USERS["ingest"],
                                 **({"tls": {"ca_file": broker.ca}} if tls else {}), **kw), ["t/#"])


async def drain(src: MqttSource, n: int, timeout: float) -> list[bytes]:
    got: list[bytes] = []
    while len(got) < n:
        batch = await asyncio.wait_for(src.get_batch(50), timeout)
        got += [m.payload for m in batch]
        src.ack(batch)
    return got


async def test_broker_restart_under_a_running_source_reconnects_and_loses_nothing(mosquitto):
    src = source(mosquitto, "live", tls=True, reconnect_min_s=1, reconnect_max_s=2)
    await src.start()
    await asyncio.sleep(0.3)  # SUBSCRIBE follows the CONNACK
    pub = publisher(mosquitto)
    publish_all(pub, [("t/a", b"before")])
    assert await drain(src, 1, 5) == [b"before"]
    pub.disconnect()
    pub.loop_stop()

    await asyncio.to_thread(mosquitto.stop)
    await until(lambda: not src.status.connected, 5, "the source to notice the broker is gone")
    await asyncio.to_thread(mosquitto.start)
    await until(lambda: src.status.connects == 2, 15, "reconnect")
    await asyncio.sleep(0.3)
    pub = publisher(mosquitto, "pub2")
    await asyncio.to_thread(publish_all, pub, [("t/a", f"after {i}".encode()) for i in range(200)])
    assert await drain(src, 200, 10) == [f"after {i}".encode() for i in range(200)]
    src.stop()
    pub.loop_stop()


async def test_a_slow_consumer_stops_the_reading_and_gets_everything_in_order(mosquitto):
    # MQTT 3.1.1 has no receive maximum: the broker sends up to its inflight limit (1000) at once.
    src = source(mosquitto, "slow", tls=False, queue_size=20, protocol="3.1.1")
    await src.start()
    await asyncio.sleep(0.3)
    pub = publisher(mosquitto)
    await asyncio.to_thread(publish_all, pub, [("t/x", str(i).encode()) for i in range(500)])
    await asyncio.sleep(0.3)
    assert len(src._buf) <= 20  # the rest waits in the broker and TCP, not in our memory
    got = await drain(src, 500, 10)
    assert got == [str(i).encode() for i in range(500)]
    assert src.status.received == src.status.acked == 500
    src.stop()
    pub.loop_stop()
