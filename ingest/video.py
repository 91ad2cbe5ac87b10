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
from typing import Literal

import av
from av.video.reformatter import VideoReformatter

from ingest.clips import PacketRing
from ingest.frame import Frame
from ingest.redact import redact_text, redact_url


def is_network_url(url: str) -> bool:
    return "://" in url and not url.startswith("file://")


class SourceError(RuntimeError):
    """A source could not be opened or broke while decoding; the message is already redacted."""


class FrameSampler:
    """Keeps one frame per 1/fps seconds of media time.

    It follows media time rather than counting frames, so a variable or unknown frame rate, or a
    gap in the stream, never changes the analysis rate.
    """

    def __init__(self, fps: float, slack: float = 0.0) -> None:
        self.period = 1.0 / fps
        self.slack = slack  # fraction of a period a frame may come early and still be taken
        self._next: float | None = None

    def take(self, t: float) -> bool:
        if self._next is None or t + 1e-6 + self.slack * self.period >= self._next:
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
        raise SourceError(f"cannot open {redact_url(url)}: {redact_text(str(exc))}") from None


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


class DecodeObserver:
    """What the decode loop reports while it runs; the worker overrides these (no-ops here).

    Calls come from the decode thread. `abort()` is asked once per packet: a reason string ends
    the pass with a SourceError (the watchdog's way to break a stream that trickles bytes but no
    pictures, which the socket timeout never sees).
    """

    def packet(self, keyframe: bool) -> None: ...

    def decoded(self) -> None: ...

    def decode_error(self, message: str) -> None: ...

    def mode(self, keyframes_only: bool) -> None: ...

    def abort(self) -> str | None:
        return None


DecodeMode = Literal["auto", "keyframes", "all"]


class KeyframeGate:
    """Decides, keyframe by keyframe, whether decoding keyframes alone is enough.

    In "auto" it measures the interval between keyframes on the packets and skips non-key frames
    while the analysis rate is at or below the keyframe rate; a camera whose GOP grows goes back to
    full decode at its next keyframe. The first decision needs two keyframes: until then
    `iter_frames` holds the demuxed packets without decoding them (one GOP, a few MB at most),
    then decodes them under the decision. So no GOP is decoded in full for nothing, and nothing is
    analysed late (with an 8 s GOP, starting on keyframes alone would leave the first 8 s
    unanalysed); the price is that the first frame comes one GOP after a connect.
    """

    def __init__(self, mode: DecodeMode, analysis_fps: float) -> None:
        self.mode, self.fps = mode, analysis_fps
        self._last_key: float | None = None
        self.keyframes_only = mode == "keyframes"
        self.decided = mode != "auto"

    def on_keyframe(self, t: float) -> bool:
        """Returns True when the decision changed."""
        if self.mode != "auto":
            return False
        before = self.keyframes_only
        if self._last_key is not None and t > self._last_key:
            self.keyframes_only = self.fps <= 1.0 / (t - self._last_key) + 1e-6
            self.decided = True
        self._last_key = t
        return before != self.keyframes_only


def iter_frames(
    camera_id: str,
    url: str,
    analysis_fps: float,
    *,
    realtime: bool = False,
    rtsp_transport: str = "tcp",
    socket_timeout_s: float = 5.0,
    media_offset_s: float = 0.0,
    decode: DecodeMode = "auto",
    observer: DecodeObserver | None = None,
    ring: PacketRing | None = None,
    start_s: float = 0.0,
) -> Iterator[Frame]:
    """Decode one pass over a source and yield frames sampled at `analysis_fps`.

    Returns at end of stream. For a live source that end is a disconnect: PyAV ends the loop
    without an exception when the server goes away, so the caller decides what EOF means.
    `media_offset_s` is added to media times, so a looping file keeps a monotonic clock.
    `start_s` (files): start that many seconds in, modulo the file's length; media times then
    count from the file's start, and a real-time pace starts there.
    Only sampled frames are converted to BGR; with `decode="auto"` non-key frames are not even
    decoded while the keyframes alone meet the analysis rate (see KeyframeGate).
    """
    obs = observer or DecodeObserver()
    sampler = FrameSampler(analysis_fps)
    gate = KeyframeGate(decode, analysis_fps)
    container = open_container(url, rtsp_transport=rtsp_transport, socket_timeout_s=socket_timeout_s)
    try:
        stream = container.streams.video[0]
        ctx = stream.codec_context
        ctx.thread_type = "SLICE"  # one decode thread per stream: frame threading costs more CPU
        ctx.thread_count = 1
        _set_skip(ctx, gate.keyframes_only, sampler)
        if gate.decided:  # auto reports its mode once it has decided
            obs.mode(gate.keyframes_only)
        if ring is not None:
            ring.begin(stream)
        first_pts: float | None = None
        wall_start = time.monotonic()
        if start_s > 0 and container.duration:
            start_s %= container.duration / 1_000_000
            container.seek(int(start_s / stream.time_base), stream=stream, backward=True)
            first_pts = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
            wall_start -= start_s  # the frames before `start_s` in the keyframe's GOP pass without waiting
        index = 0
        held: list = []  # packets demuxed before the first decode decision (auto mode only)

        # One converter per stream, one thread: FFmpeg's default makes a scaler context and a
        # thread pool for every frame, which costs more than the conversion of a keyframe itself.
        bgr = VideoReformatter()

        def decode(packet):
            nonlocal first_pts, index
            try:
                if gate.keyframes_only and packet.size:
                    if not packet.is_keyframe:
                        return  # the decoder would skip it (skip_frame NONKEY): do not even hand it over
                    # A keyframe stands alone: drain it now, not after the decoder's reorder delay
                    # (with B-frames that is two keyframes, i.e. seconds, late), then start afresh.
                    frames = ctx.decode(packet)
                    for vf in (drained := ctx.decode(None)):
                        vf.time_base = stream.time_base  # PyAV stamps only frames of a real packet
                    frames += drained
                    ctx.flush_buffers()
                else:
                    frames = ctx.decode(packet)
            except av.error.InvalidDataError as exc:  # a corrupt packet: count it, keep going
                obs.decode_error(redact_text(str(exc)))
                return
            for vf in frames:
                obs.decoded()
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
                image = bgr.reformat(vf, format="bgr24", threads=1).to_ndarray()
                yield Frame(camera_id, index, media_offset_s + t, time.time(), vf.key_frame, image)
                index += 1

        def decide_and_release():
            if not gate.decided:  # no second keyframe in sight: decode everything, to be safe
                gate.decided, gate.keyframes_only = True, False
            _set_skip(ctx, gate.keyframes_only, sampler)
            obs.mode(gate.keyframes_only)
            pending = held[:]
            held.clear()
            for p in pending:
                yield from decode(p)

        # Seconds as PyAV computes a frame's `time` (not through Fraction, which costs more per
        # packet than the rest of this loop), so packet and frame times agree to the bit.
        tb_num, tb_den = stream.time_base.numerator, stream.time_base.denominator
        try:
            for packet in container.demux(stream):
                pts = packet.pts
                t_packet = float(pts) * tb_num / tb_den if pts is not None else None
                if packet.size:
                    key = packet.is_keyframe
                    obs.packet(key)
                    if t_packet is not None:
                        if first_pts is None:  # frames and packets share one clock from here
                            first_pts = t_packet
                        if ring is not None:
                            ring.push(packet, media_offset_s + t_packet - first_pts)
                    reason = obs.abort()
                    if reason is not None:
                        raise SourceError(f"{reason} on {redact_url(url)}")
                    was_decided = gate.decided
                    if key and t_packet is not None and gate.on_keyframe(t_packet) and was_decided:
                        _set_skip(ctx, gate.keyframes_only, sampler)
                        obs.mode(gate.keyframes_only)
                    if not gate.decided:
                        held.append(packet)
                        # A GOP longer than this is as good as none: stop waiting for a second keyframe.
                        if t_packet is not None and first_pts is not None and t_packet - first_pts > _MAX_LOOKAHEAD_S:
                            yield from decide_and_release()
                        continue
                    if held:
                        yield from decide_and_release()
                    if gate.keyframes_only and not key:
                        continue  # skipped by the decoder anyway (see `decode`); spare the call
                elif held:  # end of stream before a decision
                    yield from decide_and_release()
                yield from decode(packet)
            if held:
                yield from decide_and_release()
        except av.error.FFmpegError as exc:
            raise SourceError(f"decode failed on {redact_url(url)}: {redact_text(str(exc))}") from None
    finally:
        container.close()


_MAX_LOOKAHEAD_S = 10.0


def _set_skip(ctx, keyframes_only: bool, sampler: FrameSampler) -> None:
    ctx.skip_frame = "NONKEY" if keyframes_only else "DEFAULT"
    # Keyframes come on the camera's clock, not ours: accept one up to a quarter period early so a
    # GOP equal to the analysis period is not halved by timestamp jitter.
    sampler.slack = 0.25 if keyframes_only else 0.0
