"""The built-in restreamer: each camera's H.264 as fragmented MP4 over HTTP, not re-encoded.

Run as a child process of the service (bridge/http/live/supervisor.py), never by hand:

    python -m bridge.http.live.restreamer CONFIG.json

CONFIG.json (written mode 0600 by the supervisor, it holds the cameras' credentials):
`{"listen": "127.0.0.1:PORT", "auth": "user:password", "streams": {"<camera id>": "<rtsp url or file>"},
"idle_close_s": 10, "open_timeout_s": 10}`; with `auth`, every request needs it (HTTP basic auth).

It answers the subset of go2rtc's HTTP API the console uses, so either can sit behind the proxy:
`GET /api/streams` (names and viewer counts, never URLs) and `GET /api/stream.mp4?src=<camera id>`
(an endless fragmented MP4: `ftyp`+`moov`, then one `moof`+`mdat` per frame; for a file, `&start=`
media seconds says where the camera's analysis is, so both show the same moment). A camera is opened
when its first viewer arrives (one connection per camera, however many viewers) and closed
`idle_close_s` after the last leaves. FFmpeg's demuxer and MP4 muxer do the work through PyAV:
packets are copied, never decoded. A new viewer starts at the latest keyframe (the GOP so far
is sent at once), so the picture appears without waiting for the next one; the player then
jumps to the live edge. A file is played in real time and looped (the demo's camera).
"""
from __future__ import annotations

import asyncio
import base64
import hmac
import json
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import av

from ingest.redact import redact_text

MAX_GOP = 1500  # packets kept since the last keyframe for new viewers (60 s at 25 fps)
MAX_QUEUED = 400  # fragments waiting for a slow viewer (~15 s at 25 fps); beyond that it is dropped


def log(msg: str, **fields) -> None:
    """One JSON line on stderr; the supervisor re-logs it (redacted again) through structlog."""
    line = {"event": msg, **{k: redact_text(str(v)) for k, v in fields.items()}}
    print(json.dumps(line, ensure_ascii=False), file=sys.stderr, flush=True)


@dataclass
class Pkt:
    data: bytes
    pts: int | None
    dts: int | None
    duration: int
    key: bool


class Viewer:
    """One HTTP response: a muxer of its own writing into a queue the connection drains."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.muxer: av.container.OutputContainer | None = None
        self.stream = None
        self.closed = False

    def write(self, data) -> int:  # the muxer's file object, called on the reader thread
        if not self.closed:
            self.loop.call_soon_threadsafe(self._put, bytes(data))
        return len(data)

    def _put(self, data: bytes | None) -> None:
        if self.queue.qsize() > MAX_QUEUED:
            self.closed = True
            self.queue.put_nowait(None)
            return
        self.queue.put_nowait(data)

    def start(self, template, gop: list[Pkt]) -> None:
        self.muxer = av.open(self, "w", format="mp4", options={
            "movflags": "empty_moov+default_base_moof+frag_every_frame", "flush_packets": "1"})
        self.stream = self.muxer.add_stream_from_template(template)
        self.time_base = template.time_base
        for p in gop:
            self.send(p)

    def send(self, p: Pkt) -> None:
        pkt = av.Packet(p.data)
        pkt.pts, pkt.dts, pkt.duration = p.pts, p.dts, p.duration
        pkt.time_base = self.time_base
        pkt.is_keyframe = p.key
        pkt.stream = self.stream
        self.muxer.mux(pkt)

    def end(self) -> None:
        self.closed = True
        self.loop.call_soon_threadsafe(self.queue.put_nowait, None)
        if self.muxer is not None:
            try:
                self.muxer.close()
            except (av.FFmpegError, OSError) as exc:  # the stream is over either way
                log("restreamer.muxer_close_failed", error=repr(exc))
            self.muxer = None


class Source:
    """One camera: a reader thread while anyone watches, handing packets to every viewer."""

    def __init__(self, name: str, url: str, idle_close_s: float, open_timeout_s: float) -> None:
        self.name, self.url = name, url
        self.idle_close_s, self.open_timeout_s = idle_close_s, open_timeout_s
        self.lock = threading.Lock()
        self.viewers: set[Viewer] = set()
        self.pending: list[Viewer] = []
        self.thread: threading.Thread | None = None
        self.online = False
        self.last_error: str | None = None
        self.start_s: float | None = None

    def join(self, viewer: Viewer, start_s: float | None = None) -> None:
        """`start_s`: where in a file the camera's analysis is now (media seconds, any loop): a file
        opened for this viewer starts there, so the picture and the analysed frames agree."""
        with self.lock:
            self.pending.append(viewer)
            if self.thread is None or not self.thread.is_alive():
                self.start_s = start_s
                self.thread = threading.Thread(target=self._run, name=f"restream-{self.name}", daemon=True)
                self.thread.start()

    def leave(self, viewer: Viewer) -> None:
        with self.lock:
            viewer.closed = True
            if viewer in self.pending:
                self.pending.remove(viewer)

    def _idle_since(self, idle_at: float | None) -> float | None:
        with self.lock:
            for v in [v for v in self.viewers if v.closed]:
                self.viewers.discard(v)
                v.end()
            busy = self.viewers or self.pending
        return None if busy else (idle_at or time.monotonic())

    def _run(self) -> None:
        idle_at: float | None = None
        while True:
            try:
                idle_at = self._stream(idle_at)
            except (av.FFmpegError, OSError, ValueError) as exc:
                self.online, self.last_error = False, redact_text(str(exc))
                log("restreamer.source_failed", stream=self.name, error=exc)
                with self.lock:  # their responses end; the player asks again
                    ended, self.pending = [*self.pending, *self.viewers], []
                    self.viewers.clear()
                for v in ended:
                    v.end()
            idle_at = self._idle_since(idle_at)
            if idle_at is not None and time.monotonic() - idle_at >= self.idle_close_s:
                with self.lock:
                    if not self.viewers and not self.pending:
                        self.thread, self.online = None, False
                        log("restreamer.source_closed", stream=self.name)
                        return
            time.sleep(1.0)

    def _stream(self, idle_at: float | None) -> float | None:
        live = "://" in self.url and not self.url.startswith("file://")
        options = {"rtsp_transport": "tcp"} if self.url.startswith("rtsp") else {}
        with av.open(self.url, options=options, timeout=(self.open_timeout_s, self.open_timeout_s)) as inp:
            src = inp.streams.video[0]
            if src.codec_context.name not in ("h264", "hevc"):
                raise ValueError(f"codec {src.codec_context.name!r} cannot be restreamed to a browser without re-encoding")
            self.online, self.last_error = True, None
            log("restreamer.source_open", stream=self.name, codec=src.codec_context.name)
            gop: list[Pkt] = []
            base = src.start_time or 0  # pacing: media time `base` plays at wall time t0
            t0, offset, wrapped, end = time.monotonic(), 0, False, None
            if not live and self.start_s and inp.duration:  # in step with the camera's analysis
                pos = self.start_s % (inp.duration / 1_000_000)
                inp.seek(base + int(pos / src.time_base), stream=src, backward=True)
                t0 -= pos  # the packets before `pos` (from its keyframe on) go out at once
            while True:
                for pkt in inp.demux(src):
                    if pkt.dts is None or pkt.size == 0:
                        continue
                    if wrapped:  # the file again: its timestamps carry on from the last loop's
                        offset, wrapped = end - pkt.dts, False
                    p = Pkt(bytes(pkt), None if pkt.pts is None else pkt.pts + offset, pkt.dts + offset,
                            pkt.duration or 0, pkt.is_keyframe)
                    end = p.dts + max(p.duration, 1)
                    if not live:  # a file plays in real time, like a camera
                        wait = t0 + float((p.dts - base) * src.time_base) - time.monotonic()
                        if wait > 0:
                            time.sleep(wait)
                    if p.key:
                        gop = [p]
                    elif gop:
                        gop.append(p)
                        if len(gop) > MAX_GOP:  # not kept: new viewers wait for the next keyframe
                            gop = []
                    self._deliver(src, p, gop)
                    idle_at = self._idle_since(idle_at)
                    if idle_at is not None and time.monotonic() - idle_at >= self.idle_close_s:
                        return idle_at
                if live or end is None:
                    raise OSError("the stream ended")
                wrapped = True
                inp.seek(0)

    def _deliver(self, template, p: Pkt, gop: list[Pkt]) -> None:
        with self.lock:
            starting = self.pending if gop else []  # a GOP in hand: they start with it, at once
            if starting:
                self.pending = []
            viewers = list(self.viewers)
        for v in viewers:
            if not v.closed:
                try:
                    v.send(p)
                except av.FFmpegError as exc:
                    log("restreamer.viewer_failed", stream=self.name, error=exc)
                    v.closed = True
        for v in starting:  # the GOP so far, from its keyframe to this packet, then live
            v.start(template, gop)
            with self.lock:
                self.viewers.add(v)


class Restreamer:
    def __init__(self, cfg: dict) -> None:
        # Basic auth (`"auth": "user:password"`): other local users of the machine get nothing.
        auth = cfg.get("auth")
        self.auth = f"Basic {base64.b64encode(auth.encode()).decode()}" if auth else None
        self.sources = {name: Source(name, url, float(cfg.get("idle_close_s", 10)), float(cfg.get("open_timeout_s", 10)))
                        for name, url in cfg["streams"].items()}

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = (await reader.readline()).decode("latin-1").split()
            headers = {}
            while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
                k, _, v = line.decode("latin-1").partition(":")
                headers[k.strip().lower()] = v.strip()
            if self.auth is not None and not hmac.compare_digest(headers.get("authorization", ""), self.auth):
                return await self._reply(writer, 401, "text/plain", b"unauthorized")
            if len(request) < 2 or request[0] != "GET":
                return await self._reply(writer, 405, "text/plain", b"only GET")
            url = urlsplit(request[1])
            query = parse_qs(url.query)
            if url.path == "/api/streams":
                body = {n: {"consumers": len(s.viewers), "online": s.online, "error": s.last_error}
                        for n, s in self.sources.items()}
                return await self._reply(writer, 200, "application/json", json.dumps(body).encode())
            if url.path == "/api/stream.mp4":
                source = self.sources.get((query.get("src") or [""])[0])
                if source is None:
                    return await self._reply(writer, 404, "text/plain", b"no such stream")
                start = (query.get("start") or [None])[0]
                return await self._stream(source, reader, writer, float(start) if start else None)
            await self._reply(writer, 404, "text/plain", b"not found")
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the viewer went away
        finally:
            writer.close()

    async def _reply(self, writer, status: int, ctype: str, body: bytes) -> None:
        writer.write(f"HTTP/1.1 {status} X\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
                     "Connection: close\r\n\r\n".encode() + body)
        await writer.drain()

    async def _stream(self, source: Source, reader, writer, start_s: float | None) -> None:
        viewer = Viewer(asyncio.get_running_loop())
        source.join(viewer, start_s)
        gone = asyncio.ensure_future(reader.read(1))  # EOF: the proxy closed the connection
        try:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: video/mp4\r\nCache-Control: no-store\r\n"
                         b"Connection: close\r\n\r\n")
            while True:
                get = asyncio.ensure_future(viewer.queue.get())
                done, _ = await asyncio.wait({get, gone}, return_when=asyncio.FIRST_COMPLETED)
                if gone in done:
                    get.cancel()
                    return
                data = get.result()
                if data is None:
                    return
                writer.write(data)
                await writer.drain()
        finally:
            gone.cancel()
            source.leave(viewer)


async def serve(cfg: dict) -> None:
    host, _, port = cfg["listen"].rpartition(":")
    restreamer = Restreamer(cfg)
    server = await asyncio.start_server(restreamer.handle, host, int(port))
    log("restreamer.listening", listen=cfg["listen"], streams=len(restreamer.sources))
    async with server:
        await server.serve_forever()


def main() -> None:
    cfg = json.loads(Path(sys.argv[1]).read_text())
    try:
        asyncio.run(serve(cfg))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
