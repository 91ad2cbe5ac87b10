"""PyAV video sources: files and RTSP, sampled at the analysis rate.

One code path serves `run` (live, paced, looping files) and `replay` (as fast as possible): the
only differences are the pacing and the looping flags.
"""
from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone

import av

from ingest.frame import Frame
from ingest.redact import redact_url


def is_network_url(url: str) -> bool:
    return "://" in url and not url.startswith("file://")


class SourceError(RuntimeError):
    """A source could not be opened or broke while decoding; the message is already redacted."""


class FrameSampler:
    """Keeps one frame per 1/fps seconds of media time.

    It follows media time rather than counting frames, so a variable or unknown frame rate, or a
    gap in the stream, never changes the analysis rate.
    """

    def __init__(self, fps: float) -> None:
        self.period = 1.0 / fps
        self._next: float | None = None

    def take(self, t: float) -> bool:
        if self._next is None or t + 1e-6 >= self._next:
            # After a gap, restart the grid at t instead of firing a burst to catch up.
            nxt = (self._next or t) + self.period
            self._next = nxt if nxt > t else t + self.period
            return True
        return False


@dataclass(frozen=True, slots=True)
class SourceInfo:
    width: int
    height: int
    fps: float | None
    duration_s: float | None
    start_time: datetime | None  # from the container's `creation_time` tag, if any


def open_container(url: str, *, rtsp_transport: str = "tcp", socket_timeout_s: float = 5.0):
    """Open a file or network stream; errors come back as SourceError without credentials."""
    options: dict[str, str] = {}
    if url.startswith(("rtsp://", "rtsps://")):
        options = {"rtsp_transport": rtsp_transport, "timeout": str(int(socket_timeout_s * 1e6))}
    elif is_network_url(url):
        options = {"timeout": str(int(socket_timeout_s * 1e6))}
    elif not os.path.exists(url.removeprefix("file://")):
        raise SourceError(f"video file not found: {url}")
    try:
        return av.open(url.removeprefix("file://"), options=options, timeout=socket_timeout_s)
    except (av.error.FFmpegError, OSError) as exc:
        raise SourceError(f"cannot open {redact_url(url)}: {exc}") from None


def probe(url: str) -> SourceInfo:
    with open_container(url) as container:
        stream = container.streams.video[0]
        created = container.metadata.get("creation_time") or stream.metadata.get("creation_time")
        start = None
        if created:
            try:
                start = datetime.fromisoformat(created.replace("Z", "+00:00"))
                if start.tzinfo is None:
                    start = start.replace(tzinfo=timezone.utc)
            except ValueError:
                start = None
        duration = float(stream.duration * stream.time_base) if stream.duration else None
        fps = float(stream.average_rate) if stream.average_rate else None
        return SourceInfo(stream.codec_context.width, stream.codec_context.height, fps, duration, start)


def iter_frames(
    camera_id: str,
    url: str,
    analysis_fps: float,
    *,
    realtime: bool = False,
    rtsp_transport: str = "tcp",
    socket_timeout_s: float = 5.0,
    media_offset_s: float = 0.0,
    on_decoded=None,
) -> Iterator[Frame]:
    """Decode one pass over a source and yield frames sampled at `analysis_fps`.

    Returns at end of stream. For a live source that end is a disconnect: PyAV ends the loop
    without an exception when the server goes away, so the caller decides what EOF means.
    `media_offset_s` is added to media times, so a looping file keeps a monotonic clock.
    `on_decoded()` is called for every decoded frame (for the decoded-frames counter).
    """
    sampler = FrameSampler(analysis_fps)
    container = open_container(url, rtsp_transport=rtsp_transport, socket_timeout_s=socket_timeout_s)
    try:
        stream = container.streams.video[0]
        stream.thread_type = "SLICE"  # one decode thread per stream: frame threading costs more CPU
        first_pts: float | None = None
        wall_start = time.monotonic()
        index = 0
        try:
            for vf in container.decode(stream):
                if on_decoded is not None:
                    on_decoded()
                if vf.pts is None or vf.time is None:
                    continue
                if first_pts is None:
                    first_pts = vf.time
                t = vf.time - first_pts
                if not sampler.take(t):
                    continue
                if realtime:
                    delay = wall_start + t - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                image = vf.to_ndarray(format="bgr24")
                yield Frame(camera_id, index, media_offset_s + t, time.time(), vf.key_frame, image)
                index += 1
        except av.error.FFmpegError as exc:
            raise SourceError(f"decode failed on {redact_url(url)}: {exc}") from None
    finally:
        container.close()
