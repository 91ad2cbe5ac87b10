"""Evidence clips: the last seconds of a camera's encoded video, cut and remuxed without re-encoding.

The decode loop pushes every demuxed packet (bytes and timestamps, a few MB per camera at
typical bitrates) into a bounded ring. A clip from about 10 s before an incident opened to 5 s
after is the packets from the last keyframe before its start to its end, written with the
stream's own codec parameters: no decoding, no encoding.

The container is MP4 when MP4 can hold the codec (H.264, H.265, MPEG-4 Part 2: every camera we
know), else Matroska, else AVI (old VfW codecs such as MS-MPEG4v2 fit only there). A codec none
of them holds gets no clips, with one warning naming the camera and the codec: evidence that
cannot be made never stops analysis.
"""
from __future__ import annotations

import io
import threading
from collections import deque
from dataclasses import dataclass

import av
import structlog

log = structlog.get_logger(__name__)

# (FFmpeg muxer, file extension), most widely playable first.
CONTAINERS: tuple[tuple[str, str], ...] = (("mp4", "mp4"), ("matroska", "mkv"), ("avi", "avi"))


@dataclass(frozen=True, slots=True)
class _Packet:
    t: float  # media seconds, the same clock as the frames'
    key: bool
    data: bytes
    pts: int
    dts: int | None
    duration: int


@dataclass(frozen=True, slots=True)
class Clip:
    data: bytes
    ext: str  # file extension of its container: mp4, mkv or avi


class PacketRing:
    def __init__(self, keep_s: float, camera_id: str = "") -> None:
        self.keep_s = keep_s
        self.camera_id = camera_id
        self._lock = threading.Lock()
        self._packets: deque[_Packet] = deque()
        self._holder = None  # an unwritten output container holding the stream template
        self._template = None
        self._time_base = None
        self._container: tuple[str, str] | None = None
        self._warned: set[str] = set()  # codecs already warned about: one warning each

    def begin(self, stream) -> None:
        """A new connection: take its codec parameters; older packets cannot be mixed with it."""
        codec = stream.codec_context.name
        holder = template = container = None
        for fmt, ext in CONTAINERS:
            out = av.open(io.BytesIO(), "w", format=fmt)
            try:
                template = out.add_stream_from_template(stream)
            except ValueError:  # "'mp4' format does not support 'msmpeg4v2' codec"
                out.close()
                continue
            holder, container = out, (fmt, ext)
            break
        if container is None and codec not in self._warned:
            self._warned.add(codec)
            log.warning("clip.codec_unsupported", camera=self.camera_id, codec=codec,
                        tried=[f for f, _ in CONTAINERS],
                        detail="no container holds this codec without re-encoding: incidents get no clips")
        with self._lock:
            old, self._holder = self._holder, holder
            self._template, self._time_base, self._container = template, stream.time_base, container
            self._packets.clear()
        if old is not None:
            old.close()

    @property
    def ext(self) -> str | None:
        """File extension of the clips this stream gives (mp4, mkv, avi); None: no clips."""
        return self._container[1] if self._container else None

    def push(self, packet, t: float) -> None:
        if packet.pts is None or not packet.size or self._template is None:
            return
        p = _Packet(t, bool(packet.is_keyframe), bytes(packet), packet.pts, packet.dts, packet.duration or 0)
        with self._lock:
            self._packets.append(p)
            while self._packets and self._packets[0].t < t - self.keep_s:
                self._packets.popleft()

    def frame_at(self, t: float):
        """The decoded picture (BGR) shown at media time `t`, decoded from the keyframe before it."""
        clip = self.cut(t, t)
        if clip is None:
            return None
        image = None
        with av.open(io.BytesIO(clip.data)) as c:
            for frame in c.decode(video=0):
                image = frame.to_ndarray(format="bgr24")  # the last one decoded is the one at t
        return image

    def cut(self, t0: float, t1: float) -> Clip | None:
        """The clip of [last keyframe <= t0 (or the first kept), t1]; None if nothing is kept or it
        cannot be written (logged)."""
        with self._lock:
            packets = list(self._packets)
            template, tb, container = self._template, self._time_base, self._container
        if not packets or template is None or container is None:
            return None
        keys = [i for i, p in enumerate(packets) if p.key]
        if not keys:
            return None
        before = [i for i in keys if packets[i].t <= t0]
        start = before[-1] if before else keys[0]  # the window may not reach back to t0
        chosen = [p for p in packets[start:] if p.t <= t1]
        try:
            return Clip(self._mux(chosen, template, tb, container[0]), container[1])
        except (av.FFmpegError, ValueError) as exc:
            log.warning("clip.failed", camera=self.camera_id, codec=template.codec_context.name,
                        container=container[0], error=str(exc))
            return None

    @staticmethod
    def _mux(chosen: list[_Packet], template, tb, fmt: str) -> bytes:
        buf = io.BytesIO()
        with av.open(buf, "w", format=fmt) as out:
            stream = out.add_stream_from_template(template)
            base = chosen[0].dts if chosen[0].dts is not None else chosen[0].pts
            for p in chosen:
                pkt = av.Packet(p.data)
                pkt.pts, pkt.dts = p.pts - base, (p.dts - base) if p.dts is not None else None
                pkt.time_base, pkt.stream, pkt.is_keyframe = tb, stream, p.key
                if p.duration:
                    pkt.duration = p.duration
                out.mux(pkt)
        return buf.getvalue()
