"""Evidence clips: the last seconds of a camera's encoded video, cut and remuxed without re-encoding.

The decode loop pushes every demuxed packet (bytes and timestamps, a few MB per camera at
typical bitrates) into a bounded ring. A clip from about 10 s before an incident opened to 5 s
after is the packets from the last keyframe before its start to its end, written as MP4 with the
stream's own codec parameters: no decoding, no encoding.
"""
from __future__ import annotations

import io
import threading
from collections import deque
from dataclasses import dataclass

import av


@dataclass(frozen=True, slots=True)
class _Packet:
    t: float  # media seconds, the same clock as the frames'
    key: bool
    data: bytes
    pts: int
    dts: int | None
    duration: int


class PacketRing:
    def __init__(self, keep_s: float) -> None:
        self.keep_s = keep_s
        self._lock = threading.Lock()
        self._packets: deque[_Packet] = deque()
        self._holder = None  # an unwritten output container holding the stream template
        self._template = None
        self._time_base = None

    def begin(self, stream) -> None:
        """A new connection: take its codec parameters; older packets cannot be mixed with it."""
        holder = av.open(io.BytesIO(), "w", format="mp4")
        template = holder.add_stream_from_template(stream)
        with self._lock:
            old, self._holder = self._holder, holder
            self._template, self._time_base = template, stream.time_base
            self._packets.clear()
        if old is not None:
            old.close()

    def push(self, packet, t: float) -> None:
        if packet.pts is None or not packet.size:
            return
        p = _Packet(t, bool(packet.is_keyframe), bytes(packet), packet.pts, packet.dts, packet.duration or 0)
        with self._lock:
            self._packets.append(p)
            while self._packets and self._packets[0].t < t - self.keep_s:
                self._packets.popleft()

    def frame_at(self, t: float):
        """The decoded picture (BGR) shown at media time `t`, decoded from the keyframe before it."""
        data = self.cut(t, t)
        if data is None:
            return None
        image = None
        with av.open(io.BytesIO(data)) as c:
            for frame in c.decode(video=0):
                image = frame.to_ndarray(format="bgr24")  # the last one decoded is the one at t
        return image

    def cut(self, t0: float, t1: float) -> bytes | None:
        """MP4 bytes of [last keyframe <= t0 (or the first kept), t1]; None if nothing is kept."""
        with self._lock:
            packets = list(self._packets)
            template, tb = self._template, self._time_base
        if not packets or template is None:
            return None
        keys = [i for i, p in enumerate(packets) if p.key]
        if not keys:
            return None
        before = [i for i in keys if packets[i].t <= t0]
        start = before[-1] if before else keys[0]  # the window may not reach back to t0
        chosen = [p for p in packets[start:] if p.t <= t1]
        buf = io.BytesIO()
        with av.open(buf, "w", format="mp4") as out:
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
