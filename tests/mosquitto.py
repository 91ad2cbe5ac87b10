"""A real Mosquitto broker for tests, started and stopped by the harness.

    broker = Mosquitto(tmp_dir)    # own config, password file and TLS CA, free loopback ports
    broker.start()                 # blocks until both listeners accept connections
    broker.port / broker.tls_port  # plain (password) and TLS (password) listeners
    broker.restart()               # same ports; persistent sessions and queued messages survive
    broker.stop()

Every file the broker reads is made readable by user `mosquitto`, because Mosquitto run as root
drops its privileges to that user before it reads them. Certificates are generated with the
`openssl` command line for each test run: a self-signed CA and a server certificate for 127.0.0.1.
"""
from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from tests.brokers import HOST, free_port

USERS = {"ingest": "s3cret-ingest", "sensor": "s3cret-sensor"}


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_tls(dir: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1; returns (ca, cert, key)."""
    dir.mkdir(parents=True, exist_ok=True)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=xueliang test CA",
             "-keyout", "ca.key", "-out", "ca.crt", cwd=dir)
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
             "-keyout", "server.key", "-out", "server.csr", cwd=dir)
    (dir / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-days", "2", "-extfile", "ext.cnf", "-out", "server.crt", cwd=dir)
    return dir / "ca.crt", dir / "server.crt", dir / "server.key"


def _wait_port(port: int, timeout: float, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"mosquitto exited with {proc.returncode}: {proc.stderr.read().decode(errors='replace') if proc.stderr else ''}")
        try:
            with socket.create_connection((HOST, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"mosquitto did not listen on {HOST}:{port} within {timeout} s")


class Mosquitto:
    def __init__(self, dir: Path, *, max_inflight: int = 1000, persistence: bool = True) -> None:
        self.binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not os.path.exists(self.binary):
            raise RuntimeError("mosquitto not installed: run `sh scripts/system-deps.sh` (Debian package mosquitto)")
        self.dir = Path(dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.tls_port = free_port()
        self.ca, cert, key = make_tls(self.dir / "tls")
        passwd = self.dir / "passwd"
        passwd.write_text("")
        for user, pw in USERS.items():
            subprocess.run(["mosquitto_passwd", "-b", str(passwd), user, pw], check=True, capture_output=True)
        (self.dir / "data").mkdir(exist_ok=True)
        self.conf = self.dir / "mosquitto.conf"
        self.conf.write_text(
            f"per_listener_settings false\n"
            f"allow_anonymous false\npassword_file {passwd}\n"
            # Saved on SIGTERM (restart tests); no periodic autosave, which rewrites the whole
            # file and slows the broker down when many messages are queued.
            f"persistence {'true' if persistence else 'false'}\npersistence_location {self.dir / 'data'}/\n"
            f"autosave_interval 0\n"
            # Tests publish bursts of QoS 1 messages at consumers that acknowledge late, in
            # batches; the default of 20 unacknowledged messages per client would throttle them.
            f"max_inflight_messages {max_inflight}\nmax_queued_messages 100000\n"
            f"log_dest file {self.dir / 'mosquitto.log'}\nlog_type error\nlog_type warning\nlog_type notice\n"
            f"listener {self.port} {HOST}\n"
            f"listener {self.tls_port} {HOST}\ncafile {self.ca}\ncertfile {cert}\nkeyfile {key}\n"
        )
        self._chown()
        self.proc: subprocess.Popen | None = None

    def _chown(self) -> None:
        if os.geteuid() != 0:
            return
        try:
            pw = pwd.getpwnam("mosquitto")
        except KeyError:
            return
        for root, dirs, files in os.walk(self.dir):
            for name in [*dirs, *files]:
                os.chown(os.path.join(root, name), pw.pw_uid, pw.pw_gid)
        os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        # tmp_path's parents are root-only (0700): let the broker user traverse to its files.
        for parent in self.dir.parents:
            if str(parent) in ("/", "/tmp"):
                break
            os.chmod(parent, os.stat(parent).st_mode | 0o011)

    def start(self, timeout: float = 10.0) -> None:
        self.proc = subprocess.Popen([self.binary, "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        _wait_port(self.port, timeout, self.proc)
        _wait_port(self.tls_port, timeout, self.proc)

    def stop(self) -> None:
        """SIGTERM: Mosquitto writes its persistence file (sessions, queued messages) and exits."""
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def log(self) -> str:
        path = self.dir / "mosquitto.log"
        return path.read_text(errors="replace") if path.exists() else ""
