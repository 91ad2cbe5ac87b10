"""Soak (not in `make test`; run with `make soak`): memory stays flat over 200 forced reconnects
of a camera against a real RTSP server that is killed and restarted each time."""
from __future__ import annotations

import threading
import time

import psutil
import pytest

from ingest.stream_config import ReconnectConfig, VideoInputConfig
from ingest.worker import CameraState, CameraWorker

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


def wait_state(worker: CameraWorker, states: set, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while worker.status.state not in states:
        if time.monotonic() > deadline:
            raise AssertionError(f"camera still {worker.status.state} after {timeout} s, wanted {states}")
        time.sleep(0.05)


def test_memory_flat_over_200_forced_reconnects(rtsp_server):
    frames = []
    lock = threading.Lock()

    def deliver(frame):
        with lock:
            frames.append(frame.media_time_s)
            del frames[:-10]

    video = VideoInputConfig(stall_after_s=2, reconnect=ReconnectConfig(initial_s=0.2, max_s=0.5))
    worker = CameraWorker("soak", rtsp_server.url("cam"), 2.0, deliver, realtime=True, loop=True, video=video)
    worker.start()
    proc = psutil.Process()
    samples = {}
    try:
        wait_state(worker, {CameraState.ONLINE}, 30)
        for i in range(1, 201):
            rtsp_server.kill()
            wait_state(worker, {CameraState.OFFLINE, CameraState.STALLED, CameraState.CONNECTING}, 15)
            rtsp_server.restart()
            wait_state(worker, {CameraState.ONLINE}, 30)
            if i in (20, 200):
                samples[i] = proc.memory_info().rss
    finally:
        worker.stop()
    assert worker.status.reconnects >= 200
    growth_mb = (samples[200] - samples[20]) / 2**20
    print(f"RSS after 20 reconnects {samples[20] / 2**20:.1f} MB, after 200 {samples[200] / 2**20:.1f} MB, "
          f"growth {growth_mb:.1f} MB")
    assert growth_mb < 10, f"memory grew {growth_mb:.1f} MB over 180 reconnects"
