"""A supervised decode thread per camera: open, decode, hand off, and reconnect when it breaks.

States: connecting -> online -> stalled -> offline (-> connecting ...), and stopped at the end.
- online: pictures are being decoded.
- stalled: the socket may still be open but no video packet arrived for `stall_after_s`; a
  watchdog thread sees it, because the decode thread is then blocked inside FFmpeg. One watchdog
  thread serves every camera of the process (see `_Watchdog`).
- offline: the connection failed or ended (end of stream on a live source is a disconnect); the
  worker waits (exponential backoff with jitter and a cap) and reconnects.

The threads never touch the event loop except through the `deliver` callback (a LatestSlot's
`put`), and PyAV releases the GIL while it waits and decodes, so one camera's trouble cannot slow
another or the loop.
"""
from __future__ import annotations

import enum
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from ingest.clips import PacketRing
from ingest.stream_config import ReconnectConfig, VideoInputConfig
from ingest.frame import Frame
from ingest.rate import RateMeter
from ingest.redact import redact_text, redact_url
from ingest.video import DecodeObserver, SourceError, is_network_url, iter_frames

log = structlog.get_logger(__name__)


class CameraState(str, enum.Enum):
    CONNECTING = "connecting"
    ONLINE = "online"
    STALLED = "stalled"
    OFFLINE = "offline"
    STOPPED = "stopped"


@dataclass
class CameraStatus:
    """What an operator sees about one camera; every field is safe to show (no credentials).

    Written by the camera's decode and watchdog threads, read by anyone: transitions take the lock,
    counters are plain ints (one writer each).
    """

    camera_id: str
    url: str  # redacted
    state: CameraState = CameraState.CONNECTING
    since: float = field(default_factory=time.time)
    down_since: float | None = None  # when the camera last stopped delivering; None while it delivers
    last_frame_at: float | None = None  # wall time of the last video packet received
    last_error: str | None = None  # redacted
    last_error_at: float | None = None
    reconnects: int = 0
    decode_errors: int = 0
    frames_received: int = 0  # video packets, i.e. compressed frames
    frames_decoded: int = 0
    frames_sampled: int = 0  # converted and handed to analysis
    keyframes_only: bool = False
    fps_in: RateMeter = field(default_factory=RateMeter)
    fps_sampled: RateMeter = field(default_factory=RateMeter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def set_state(self, state: CameraState, error: str | None = None, *, only_from: tuple[CameraState, ...] = ()) -> bool:
        """Move to `state` (optionally only from one of `only_from`); True if the state changed."""
        with self._lock:
            if only_from and self.state not in only_from:
                return False
            now = time.time()
            if error is not None:
                self.last_error, self.last_error_at = redact_text(error), now
            if state is self.state:
                return False
            if state is CameraState.ONLINE:
                self.down_since = None
            elif self.down_since is None and state in (CameraState.STALLED, CameraState.OFFLINE):
                self.down_since = now
            self.state, self.since = state, now
            return True


def backoff_delays(cfg: ReconnectConfig, rng: random.Random | None = None):
    """Exponential backoff with jitter and a cap: initial, 2x, 4x, ... max."""
    rng = rng or random.Random()
    delay = cfg.initial_s
    while True:
        yield min(cfg.max_s, delay) * (1 + rng.uniform(0, cfg.jitter))
        delay = min(cfg.max_s, delay * 2)


class _Observer(DecodeObserver):
    """The decode loop's reports, folded into the camera's status."""

    def __init__(self, worker: "CameraWorker") -> None:
        self.w = worker
        self.connected_at = time.monotonic()
        self.last_picture = self._now = self.connected_at

    def packet(self, keyframe: bool) -> None:
        st = self.w.status
        st.frames_received += 1
        st.last_frame_at = time.time()
        self._now = now = time.monotonic()  # one clock read per packet, `abort` reuses it
        st.fps_in.tick(now)
        self.w._last_packet = now

    def decoded(self) -> None:
        self.w.status.frames_decoded += 1
        self.last_picture = time.monotonic()
        if self.w.status.state is not CameraState.ONLINE:
            if self.w.status.set_state(CameraState.ONLINE):
                log.info("camera.online", camera=self.w.camera_id, url=self.w.status.url)
            self.w._reset_backoff = True

    def decode_error(self, message: str) -> None:
        self.w.status.decode_errors += 1
        log.warning("camera.decode_error", camera=self.w.camera_id, error=message)

    def mode(self, keyframes_only: bool) -> None:
        if keyframes_only != self.w.status.keyframes_only:
            log.info("camera.decode_mode", camera=self.w.camera_id, keyframes_only=keyframes_only)
        self.w.status.keyframes_only = keyframes_only

    def abort(self) -> str | None:
        if self.w._stop.is_set():
            return "stopped"
        silent = self._now - self.last_picture
        if silent > self.w._video.picture_timeout_s:
            return f"no picture decoded for {silent:.0f} s"
        return None


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
        video: VideoInputConfig | None = None,
        ring: PacketRing | None = None,
    ) -> None:
        self.camera_id = camera_id
        self._ring = ring  # the encoded stream's recent past, for evidence clips
        self._url = url
        self._fps = analysis_fps
        self._deliver = deliver
        self._realtime = realtime
        self._loop = loop
        self._video = video or VideoInputConfig()
        self.status = CameraStatus(camera_id, redact_url(url))
        self._stop = threading.Event()
        self._last_packet = time.monotonic()
        self._reset_backoff = False
        self.latest: Frame | None = None  # the last frame handed on (for snapshots and quality checks)
        self._thread = threading.Thread(target=self._run, name=f"decode-{camera_id}", daemon=True)

    def start(self) -> None:
        self._thread.start()
        WATCHDOG.add(self)

    def signal_stop(self) -> None:
        """Ask the threads to end without waiting for them (no frame is handed on after this)."""
        self._stop.set()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        WATCHDOG.remove(self)
        self._thread.join(timeout)

    def check_stall(self, now: float) -> None:
        """Frame-arrival watchdog: the decode thread cannot notice a silence it is blocked in."""
        silent = now - self._last_packet
        if silent > self._video.stall_after_s and self.status.set_state(
            CameraState.STALLED, f"no video for {silent:.1f} s", only_from=(CameraState.ONLINE,)
        ):
            log.warning("camera.stalled", camera=self.camera_id, url=self.status.url, silent_s=round(silent, 1))

    def _run(self) -> None:
        delays = backoff_delays(self._video.reconnect)
        offset = 0.0
        live = is_network_url(self._url)
        v = self._video
        first = True
        while not self._stop.is_set():
            self.status.set_state(CameraState.CONNECTING)
            self._last_packet = time.monotonic()
            last_t = None
            observer = _Observer(self)
            try:
                frames = iter_frames(
                    self.camera_id, self._url, self._fps, realtime=self._realtime,
                    rtsp_transport=v.rtsp_transport, socket_timeout_s=v.socket_timeout_s,
                    media_offset_s=offset, decode=v.decode, observer=observer, ring=self._ring,
                    start_s=time.time() if first and not live and v.file_start == "wallclock" else 0.0,
                )
                for frame in frames:
                    if self._stop.is_set():
                        break
                    if self._reset_backoff:
                        delays, self._reset_backoff = backoff_delays(v.reconnect), False
                    self.status.frames_sampled += 1
                    self.status.fps_sampled.tick()
                    last_t = frame.media_time_s
                    self.latest = frame
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
                first = False
                offset = (last_t if last_t is not None else offset) + 1.0 / self._fps
                continue
            self.status.set_state(CameraState.OFFLINE, error)
            self.status.reconnects += 1
            wait = next(delays)
            log.warning("camera.offline", camera=self.camera_id, url=self.status.url,
                        error=self.status.last_error, retry_in_s=round(wait, 2))
            self._stop.wait(wait)
        self.status.set_state(CameraState.STOPPED)


class _Watchdog:
    """One thread checks every camera's packet arrival, a few times per stall limit.

    A thread per camera would be hundreds of threads waking every half second for a clock read
    each. The thread runs while any camera is registered and ends with the last one.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._workers: set[CameraWorker] = set()
        self._thread: threading.Thread | None = None

    def add(self, worker: CameraWorker) -> None:
        with self._lock:
            self._workers.add(worker)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="camera-watchdog", daemon=True)
                self._thread.start()

    def remove(self, worker: CameraWorker) -> None:
        with self._lock:
            self._workers.discard(worker)

    def _run(self) -> None:
        while True:
            with self._lock:
                workers = list(self._workers)
                if not workers:
                    self._thread = None  # under the lock: `add` starts a fresh one if needed
                    return
            time.sleep(min(0.5, min(w._video.stall_after_s for w in workers) / 4))
            now = time.monotonic()
            for w in workers:
                try:
                    w.check_stall(now)
                except Exception:  # one camera's bug must not blind the watchdog to the others
                    log.exception("camera.watchdog_failed", camera=w.camera_id)


WATCHDOG = _Watchdog()
