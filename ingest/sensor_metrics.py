"""Prometheus series of the sensor feed, registered once on the default registry."""
from __future__ import annotations

from prometheus_client import Counter, Gauge

from ingest.sensor_decode import REASONS

MQTT_MESSAGES = Counter("xueliang_mqtt_messages_total", "MQTT messages taken from the broker.")
MQTT_CONNECTED = Gauge("xueliang_mqtt_connected", "1 while connected to the MQTT broker.")
MQTT_CONNECTS = Counter("xueliang_mqtt_connects_total", "Successful (re)connections to the MQTT broker.")
SENSOR_READINGS = Counter("xueliang_sensor_readings_total", "Readings decoded and evaluated, by sensor kind.", ["kind"])
SENSOR_DUPLICATES = Counter(
    "xueliang_sensor_duplicates_total",
    "Readings dropped as repeats of one already handled (same sensor, device time and payload; e.g. broker redelivery).",
)
SENSOR_REJECTED = Counter(
    "xueliang_sensor_rejected_total", "Messages rejected and kept in the dead-letter store, by reason.", ["reason"])
for _reason in REASONS:  # every reason shows up as 0 before the first rejection
    SENSOR_REJECTED.labels(_reason)
