"""A supervised decode thread per camera: open, decode, hand off, and reconnect when it breaks.

The thread never touches the event loop except through the `deliver` callback (a LatestSlot's
`put`), so one camera's trouble cannot slow another or the loop.
"""
from __future__ import annotations

import enum
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from ingest.config import ReconnectConfig
from ingest.frame import Frame
from ingest.redact import redact_text, redact_url
from ingest.video import SourceError, is_network_url, iter_frames

log = structlog.get_logger(__name__)


class CameraState(str, enum.Enum):
    CONNECTING = "connecting"
    ONLINE = "online"
    OFFLINE = "offline"
    STOPPED = "stopped"


@dataclass
class CameraStatus:
    """What an operator sees about one camera; every field is safe to show (no credentials)."""

    camera_id: str
    url: str  # redacted
    state: CameraState = CameraState.CONNECTING
    since: float = field(default_factory=time.time)
    last_frame_at: float | None = None
    last_error: str | None = None
    reconnects: int = 0
    frames_decoded: int = 0
    frames_sampled: int = 0

    def set_state(self, state: CameraState, error: str | None = None) -> None:
        if state is not self.state:
            self.state, self.since = state, time.time()
        if error is not None:
            self.last_error = error


def backoff_delays(cfg: ReconnectConfig, rng: random.Random | None = None):
    """Exponential backoff with jitter and a cap: initial, 2x, 4x, ... max."""
    rng = rng or random.Random()
    delay = cfg.initial_s
    while True:
        yield min(cfg.max_s, delay) * (1 + rng.uniform(0, cfg.jitter))
        delay = min(cfg.max_s, delay * 2)


class CameraWorker:
    """Runs `iter_frames` in a thread and keeps it alive.

    - A file with `loop=True` starts over at its end, its media clock continuing.
    - A network source's end of stream is a disconnect, and so is any error: back off, reconnect.
    - A file that ends without `loop` stops the worker (replay of a single pass).
    """

    def __init__(
        self,
        camera_id: str,
        url: str,
        analysis_fps: float,
        deliver: Callable[[Frame], None],
        *,
        realtime: bool,
        loop: bool,
        rtsp_transport: str = "tcp",
        socket_timeout_s: float = 5.0,
        reconnect: ReconnectConfig | None = None,
    ) -> None:
        self.camera_id = camera_id
        self._url = url
        self._fps = analysis_fps
        self._deliver = deliver
        self._realtime = realtime
        self._loop = loop
        self._transport = rtsp_transport
        self._timeout = socket_timeout_s
        self._reconnect = reconnect or ReconnectConfig()
        self.status = CameraStatus(camera_id, redact_url(url))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"decode-{camera_id}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _count_decoded(self) -> None:
        self.status.frames_decoded += 1

    def _run(self) -> None:
        delays = backoff_delays(self._reconnect)
        offset = 0.0
        live = is_network_url(self._url)
        while not self._stop.is_set():
            self.status.set_state(CameraState.CONNECTING)
            last_t = None
            try:
                for frame in iter_frames(
                    self.camera_id, self._url, self._fps, realtime=self._realtime,
                    rtsp_transport=self._transport, socket_timeout_s=self._timeout,
                    media_offset_s=offset, on_decoded=self._count_decoded,
                ):
                    if self._stop.is_set():
                        break
                    if self.status.state is not CameraState.ONLINE:
                        self.status.set_state(CameraState.ONLINE)
                        delays = backoff_delays(self._reconnect)
                    self.status.frames_sampled += 1
                    self.status.last_frame_at = frame.wall_time
                    last_t = frame.media_time_s
                    self._deliver(frame)
                error = "end of stream" if live else None
            except SourceError as exc:
                error = str(exc)
            except Exception as exc:  # a bug or an unexpected library error: keep the camera alive
                error = redact_text(f"{type(exc).__name__}: {exc}")
                log.exception("camera.decode_crash", camera=self.camera_id, error=error)
            if self._stop.is_set():
                break
            if error is None:  # a file reached its end
                if not self._loop:
                    break
                offset = (last_t if last_t is not None else offset) + 1.0 / self._fps
                continue
            self.status.set_state(CameraState.OFFLINE, error)
            self.status.reconnects += 1
            wait = next(delays)
            log.warning("camera.offline", camera=self.camera_id, url=self.status.url, error=error, retry_in_s=round(wait, 2))
            self._stop.wait(wait)
        self.status.set_state(CameraState.STOPPED)
