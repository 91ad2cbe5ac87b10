"""Harness for the real GStreamer RTSP server in tests/rtsp_server.py.

    server = RtspServer({"cam": CLIP})   # mount name -> mp4 (H.264)
    server.start()                       # blocks until it listens; same port on every restart
    server.url("cam")                    # rtsp://127.0.0.1:PORT/cam
    RtspServer({...}, credentials=("admin", "pw"))  # basic auth; url() then carries user:pw@
    server.kill(); server.restart()      # a server that dies and comes back
    server.freeze(); server.thaw()       # SIGSTOP / SIGCONT: socket open, no data
    server.stop()

The server runs under the system python (`/usr/bin/python3`, which has `gi`); Debian packages in
scripts/system-deps.sh.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from urllib.parse import quote

from tests.brokers import HOST, free_port

SCRIPT = Path(__file__).with_name("rtsp_server.py")
SYSTEM_PYTHON = os.environ.get("XUELIANG_GI_PYTHON", "/usr/bin/python3")


class RtspServer:
    def __init__(self, mounts: dict[str, Path | str], port: int | None = None,
                 credentials: tuple[str, str] | None = None) -> None:
        self.mounts = {k: str(v) for k, v in mounts.items()}
        self.port = port or free_port()
        self.credentials = credentials  # (user, password): RTSP basic auth on every mount
        self.proc: subprocess.Popen | None = None

    def url(self, mount: str, *, with_credentials: bool = True) -> str:
        if self.credentials and with_credentials:
            user, password = (quote(part, safe="") for part in self.credentials)
            return f"rtsp://{user}:{password}@{HOST}:{self.port}/{mount}"
        return f"rtsp://{HOST}:{self.port}/{mount}"

    def start(self, timeout: float = 20.0) -> None:
        cmd = [SYSTEM_PYTHON, str(SCRIPT), "--host", HOST, "--port", str(self.port)]
        for name, path in self.mounts.items():
            cmd += ["--mount", f"{name}={path}"]
        if self.credentials:
            cmd += ["--user", ":".join(self.credentials)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if line.startswith("READY"):
                return
            if not line and self.proc.poll() is not None:
                break
        out = self.proc.stdout.read() if self.proc.poll() is not None else ""
        self.kill()
        raise RuntimeError(f"RTSP server on port {self.port} did not start: {out[-2000:]}")

    def kill(self) -> None:
        """SIGKILL: the server vanishes the way a crashed camera does."""
        if self.proc is not None and self.proc.poll() is None:
            if self._stopped:
                os.kill(self.proc.pid, signal.SIGCONT)
            self.proc.kill()
            self.proc.wait(10)
        self._close()

    def freeze(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)
        self._stopped = True

    def thaw(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)
        self._stopped = False

    def restart(self) -> None:
        self.kill()
        deadline = time.monotonic() + 10
        while True:  # the port can linger a moment after the kill
            try:
                self.start()
                return
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            if self._stopped:
                self.thaw()
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._close()

    _stopped = False

    def _close(self) -> None:
        self._stopped = False
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()
        self.proc = None

    def __enter__(self) -> "RtspServer":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
