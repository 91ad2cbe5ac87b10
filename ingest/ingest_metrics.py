"""Prometheus view of the cameras, read from their status objects at scrape time.

A collector rather than counters updated in the decode threads: the status object is the single
source of truth, and the API and the metrics can never disagree.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from ingest.worker import CameraState, CameraStatus


class CameraCollector(Collector):
    def __init__(self, statuses: Callable[[], Iterable[tuple[CameraStatus, int, int, float]]]) -> None:
        """`statuses()` yields (status, frames dropped at the hand-off, frames analysed, analysed fps)
        per camera."""
        self._statuses = statuses

    def collect(self):
        up = GaugeMetricFamily("xueliang_camera_up", "1 while the camera delivers frames.", labels=["camera"])
        state = GaugeMetricFamily("xueliang_camera_state", "1 for the camera's current state.",
                                  labels=["camera", "state"])
        gauges = {
            name: GaugeMetricFamily(f"xueliang_camera_{name}", help_, labels=["camera"])
            for name, help_ in [
                ("fps_in", "Video packets received per second (last 10 s)."),
                ("fps_sampled", "Frames converted and handed to analysis per second (last 10 s)."),
                ("fps_analysed", "Frames through detection and rules per second (last 10 s)."),
                ("last_frame_timestamp_seconds", "Unix time of the last video packet."),
                ("down_seconds", "Seconds since the camera stopped delivering; 0 while it delivers."),
                ("keyframes_only", "1 while only keyframes are decoded."),
            ]
        }
        counters = {
            name: CounterMetricFamily(f"xueliang_camera_{name}", help_, labels=["camera"])
            for name, help_ in [
                ("frames_received", "Video packets (compressed frames) received."),
                ("frames_decoded", "Frames decoded."),
                ("frames_sampled", "Frames kept at the analysis rate."),
                ("frames_dropped", "Sampled frames replaced before inference took them (latest wins)."),
                ("frames_analysed", "Frames that went through detection and rules."),
                ("reconnects", "Reconnects after a failure or end of a live stream."),
                ("decode_errors", "Packets the decoder rejected."),
            ]
        }
        now = time.time()
        for st, dropped, analysed, fps_analysed in self._statuses():
            cam = [st.camera_id]
            up.add_metric(cam, 1.0 if st.state is CameraState.ONLINE else 0.0)
            for s in CameraState:
                state.add_metric([st.camera_id, s.value], 1.0 if st.state is s else 0.0)
            gauges["fps_in"].add_metric(cam, st.fps_in.rate())
            gauges["fps_sampled"].add_metric(cam, st.fps_sampled.rate())
            gauges["fps_analysed"].add_metric(cam, fps_analysed)
            gauges["last_frame_timestamp_seconds"].add_metric(cam, st.last_frame_at or 0.0)
            gauges["down_seconds"].add_metric(cam, now - st.down_since if st.down_since else 0.0)
            gauges["keyframes_only"].add_metric(cam, 1.0 if st.keyframes_only else 0.0)
            counters["frames_received"].add_metric(cam, st.frames_received)
            counters["frames_decoded"].add_metric(cam, st.frames_decoded)
            counters["frames_sampled"].add_metric(cam, st.frames_sampled)
            counters["frames_dropped"].add_metric(cam, dropped)
            counters["frames_analysed"].add_metric(cam, analysed)
            counters["reconnects"].add_metric(cam, st.reconnects)
            counters["decode_errors"].add_metric(cam, st.decode_errors)
        yield up
        yield state
        yield from gauges.values()
        yield from counters.values()
