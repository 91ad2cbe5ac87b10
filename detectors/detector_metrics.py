"""Prometheus metrics of the detectors: what the change gate ran the model on, per camera."""
from __future__ import annotations

from prometheus_client import Counter

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
