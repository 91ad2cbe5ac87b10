"""Prometheus view of the cameras, read from their status objects at scrape time.

A collector rather than counters updated in the decode threads: the status object is the single
source of truth, and the API and the metrics can never disagree.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from ingest.worker import CameraState, CameraStatus


class CameraCollector(Collector):
    def __init__(self, statuses: Callable[[], Iterable[tuple[CameraStatus, int, int]]]) -> None:
        """`statuses()` yields (status, frames dropped at the hand-off, frames analysed) per camera."""
        self._statuses = statuses

    def collect(self):
        up = GaugeMetricFamily("xueliang_camera_up", "1 while the camera delivers frames.", labels=["camera"])
        counters = {
            name: CounterMetricFamily(f"xueliang_camera_{name}", help_, labels=["camera"])
            for name, help_ in [
                ("frames_decoded", "Frames decoded."),
                ("frames_sampled", "Frames kept at the analysis rate."),
                ("frames_dropped", "Sampled frames replaced before inference took them (latest wins)."),
                ("frames_analysed", "Frames that went through detection and rules."),
                ("reconnects", "Reconnects after a failure or end of a live stream."),
            ]
        }
        for st, dropped, analysed in self._statuses():
            cam = [st.camera_id]
            up.add_metric(cam, 1.0 if st.state is CameraState.ONLINE else 0.0)
            counters["frames_decoded"].add_metric(cam, st.frames_decoded)
            counters["frames_sampled"].add_metric(cam, st.frames_sampled)
            counters["frames_dropped"].add_metric(cam, dropped)
            counters["frames_analysed"].add_metric(cam, analysed)
            counters["reconnects"].add_metric(cam, st.reconnects)
        yield up
        yield from counters.values()
