"""One watchdog thread for all cameras of a process, not one per camera."""
from __future__ import annotations

import threading
import time

from ingest.worker import WATCHDOG, CameraState, CameraWorker
from tests.helpers import REPO

CLIP = str(REPO / "configs" / "media" / "table-stays.mp4")


def watchdogs() -> list[str]:
    return [t.name for t in threading.enumerate() if "watchdog" in t.name]


def test_one_watchdog_thread_serves_every_camera_and_ends_with_the_last():
    workers = [CameraWorker(f"c{i}", CLIP, 1.0, lambda f: None, realtime=True, loop=True) for i in range(3)]
    for w in workers:
        w.start()
    try:
        deadline = time.monotonic() + 10
        while any(w.status.state is not CameraState.ONLINE for w in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert all(w.status.state is CameraState.ONLINE for w in workers)
        assert watchdogs() == ["camera-watchdog"]
        # It watches them all: a camera that went silent (registered, its decoder never started,
        # so nothing resets its clock) is stalled at the next round; the others stay online.
        silent = CameraWorker("silent", CLIP, 1.0, lambda f: None, realtime=True, loop=True)
        silent.status.set_state(CameraState.ONLINE)
        silent._last_packet -= 1 + silent._video.stall_after_s
        WATCHDOG.add(silent)
        try:
            deadline = time.monotonic() + 3
            while silent.status.state is not CameraState.STALLED and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            WATCHDOG.remove(silent)
        assert silent.status.state is CameraState.STALLED
        assert all(w.status.state is CameraState.ONLINE for w in workers)
        assert watchdogs() == ["camera-watchdog"]
    finally:
        for w in workers:
            w.stop()
    deadline = time.monotonic() + 3
    while watchdogs() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert watchdogs() == []
