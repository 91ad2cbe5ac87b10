"""Prometheus metrics of the service's own stages: cluster membership (camera ownership over Kafka),
what a restart carried over, and cluster feedback routing."""
from __future__ import annotations

from prometheus_client import Counter, Gauge

CLUSTER_CAMERAS = Gauge("xueliang_cluster_cameras", "Cameras this worker runs by the consumer group's assignment.")
CLUSTER_GENERATION = Gauge("xueliang_cluster_generation", "The worker group generation this worker holds.")
CLUSTER_REBALANCES = Counter("xueliang_cluster_rebalances_total", "Rebalances in which this worker gave up its cameras.")
CLUSTER_FENCED_SELF = Counter(
    "xueliang_cluster_fenced_total",
    "Times this worker stopped its cameras because the group refused its generation (it was replaced).")
CLUSTER_UNPROVEN = Gauge(
    "xueliang_cluster_unproven_seconds",
    "Seconds since this worker last proved its group generation, while Kafka does not answer (0 when it does).")
CLUSTER_ADOPTED = Counter(
    "xueliang_cluster_adopted_incidents_total", "Open incidents taken over from a camera's previous owner.")
RESTART_INCIDENTS = Counter(
    "xueliang_restart_incidents_total",
    "Incidents found open in the outbox at start, by what became of them: carried (given to their camera or "
    "sensor to go on under their id, or clear with a reason) or cleared (camera, sensor or rule no longer configured).",
    ["outcome"])
FEEDBACK_ELSEWHERE = Counter(
    "xueliang_feedback_verify_elsewhere_total",
    "Cluster mode: verify requests for a camera another worker runs, watched here in case the camera moves here.")
