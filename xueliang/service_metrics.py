"""Prometheus metrics of the service's own stages: cluster membership (camera ownership over Kafka),
what a restart carried over, cluster feedback routing, and the change gate per camera."""
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
GATE_FRAMES = Counter(
    "xueliang_gate_frames_total",
    "Analysed frames per camera, by what the change gate ran the model on: full (whole frame), region (the changed "
    "part) or gated (nothing changed: the model was not run, the last detections carried on).",
    ["camera", "decision"])
GATE_MODEL_SECONDS_SAVED = Counter(
    "xueliang_gate_model_seconds_saved_total",
    "Model time the change gate saved per camera: gated frames times the camera's models' mean time per image.",
    ["camera"])
GATE_SECONDS = Counter("xueliang_gate_seconds_total", "CPU seconds the change gate itself took per camera.", ["camera"])


def count_gate(camera: str, decision: str, saved_s: float, gate_s: float) -> None:
    """One analysed frame's gate decision into the metrics."""
    GATE_FRAMES.labels(camera, "gated" if decision == "skip" else decision).inc()
    if saved_s:
        GATE_MODEL_SECONDS_SAVED.labels(camera).inc(saved_s)
    GATE_SECONDS.labels(camera).inc(gate_s)
