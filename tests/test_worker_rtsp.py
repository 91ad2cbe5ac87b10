"""The supervised camera worker against a real GStreamer RTSP server that dies, freezes and returns."""
from __future__ import annotations

import socket
import threading
import time

import pytest

from ingest.stream_config import ReconnectConfig, VideoInputConfig
from ingest.frame import Frame
from ingest.worker import CameraState, CameraWorker
from tests.helpers import free_port

VIDEO = VideoInputConfig(
    socket_timeout_s=3.0, stall_after_s=2.0, reconnect=ReconnectConfig(initial_s=0.3, max_s=2.0, jitter=0.2)
)


class Sink:
    def __init__(self) -> None:
        self.frames: list[Frame] = []
        self.lock = threading.Lock()

    def __call__(self, frame: Frame) -> None:
        with self.lock:
            self.frames.append(frame)

    def count(self) -> int:
        with self.lock:
            return len(self.frames)


def wait_for(pred, timeout: float, step: float = 0.05) -> float:
    """Seconds until `pred()` held; fails the test after `timeout`."""
    t0 = time.monotonic()
    while not pred():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(step)
    return time.monotonic() - t0


@pytest.fixture
def worker_on(rtsp_server):
    workers = []

    def make(url: str, fps: float = 2.0, video: VideoInputConfig = VIDEO, cam: str = "cam-1"):
        sink = Sink()
        w = CameraWorker(cam, url, fps, sink, realtime=True, loop=True, video=video)
        w.start()
        workers.append(w)
        return w, sink

    yield make
    for w in workers:
        w.stop()


def test_killed_server_goes_offline_and_frames_flow_again_within_5s(rtsp_server, worker_on):
    w, sink = worker_on(rtsp_server.url("cam"))
    wait_for(lambda: w.status.state is CameraState.ONLINE and sink.count() >= 2, 15)
    rtsp_server.kill()
    wait_for(lambda: w.status.state is CameraState.OFFLINE, 10)
    assert w.status.last_error and w.status.down_since is not None
    time.sleep(3)  # down long enough for the backoff to reach its cap
    reconnects = w.status.reconnects
    assert reconnects >= 2, "a dead server is retried"
    rtsp_server.restart()
    n = sink.count()
    back = wait_for(lambda: sink.count() > n, 5.0)
    assert w.status.state is CameraState.ONLINE and w.status.down_since is None
    assert back <= 5.0


def test_frozen_server_is_stalled_within_watchdog_time_and_recovers_after_sigcont(rtsp_server, worker_on):
    w, sink = worker_on(rtsp_server.url("cam"))
    wait_for(lambda: w.status.state is CameraState.ONLINE and sink.count() >= 2, 15)
    rtsp_server.freeze()
    stalled = wait_for(lambda: w.status.state is CameraState.STALLED, 10)
    assert stalled <= 10 and "no video" in (w.status.last_error or "")
    # The socket timeout then turns the stall into a disconnect and retries.
    wait_for(lambda: w.status.state in (CameraState.OFFLINE, CameraState.CONNECTING), 10)
    rtsp_server.thaw()
    n = sink.count()
    wait_for(lambda: sink.count() > n and w.status.state is CameraState.ONLINE, 15)


def test_frozen_server_recovers_after_restart(rtsp_server, worker_on):
    w, sink = worker_on(rtsp_server.url("cam"))
    wait_for(lambda: w.status.state is CameraState.ONLINE, 15)
    rtsp_server.freeze()
    wait_for(lambda: w.status.state is CameraState.STALLED, 10)
    rtsp_server.restart()
    n = sink.count()
    wait_for(lambda: sink.count() > n and w.status.state is CameraState.ONLINE, 10)


def _analysed_fps(sink: Sink, seconds: float) -> float:
    n0, t0 = sink.count(), time.monotonic()
    time.sleep(seconds)
    return (sink.count() - n0) / (time.monotonic() - t0)


def test_dead_camera_next_to_healthy_one_leaves_its_fps_unchanged(rtsp_server, worker_on):
    healthy, sink = worker_on(rtsp_server.url("cam"), fps=4.0)
    wait_for(lambda: healthy.status.state is CameraState.ONLINE and sink.count() >= 4, 15)
    alone = _analysed_fps(sink, 4.0)
    # A refused port and a server that accepts but never answers, both credentialed.
    dead, _ = worker_on(f"rtsp://admin:hunter2@127.0.0.1:{free_port()}/x", cam="dead")
    with socket.socket() as mute:  # accepts the TCP connection, never says a word
        mute.bind(("127.0.0.1", 0))
        mute.listen(8)
        hung, _ = worker_on(f"rtsp://admin:hunter2@127.0.0.1:{mute.getsockname()[1]}/x", cam="hung")
        wait_for(lambda: dead.status.reconnects >= 1, 10)
        together = _analysed_fps(sink, 4.0)
        wait_for(lambda: hung.status.reconnects >= 1, 10)
    assert dead.status.state in (CameraState.OFFLINE, CameraState.CONNECTING)
    assert "hunter2" not in (dead.status.last_error or "") and "hunter2" not in dead.status.url
    assert together >= 0.9 * alone and together >= 0.9 * 4.0, (alone, together)
    assert healthy.status.state is CameraState.ONLINE
