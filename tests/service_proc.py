"""`xueliang run` as a real subprocess on loopback, for end-to-end tests."""
from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import sys
import time
from pathlib import Path

import httpx
import yaml

from bridge.http.auth import new_token
from tests.brokers import free_port
from tests.helpers import DATA_DIR, REPO


def demo_config(tmp_path: Path, *, min_dwell_s: float = 2, kafka: dict | None = None) -> dict:
    """The demo config with short dwell times, its state (outbox, evidence) under `tmp_path`."""
    doc = yaml.safe_load((REPO / "configs" / "demo.yaml").read_text())
    cam = doc["cameras"][0]
    cam["url"] = str(REPO / "configs" / "media" / "table-stays.mp4")
    cam["rules"][0].update(min_dwell_s=min_dwell_s, grace_s=2, update_interval_s=5)
    doc["grid"]["path"] = str(REPO / "configs" / "grids" / "demo-district.geojson")
    doc["data_dir"] = str(DATA_DIR)
    doc["outbox"] = {"path": str(tmp_path / "outbox.sqlite3")}
    doc["evidence"] = {"dir": str(tmp_path / "evidence")}
    doc["log"] = {"format": "json", "level": "info"}
    doc.pop("mqtt", None)  # the demo's sensors need the demo's broker; tests start their own
    doc.pop("sensors", None)
    auth = doc.setdefault("api", {}).setdefault("auth", {})
    auth["tokens_file"] = str(tmp_path / "tokens.yaml")
    doc["api"]["console_db"] = str(tmp_path / "console.sqlite3")
    if kafka:
        doc["kafka"] = kafka
    return doc


async def feedback_config(tmp_path: Path, bootstrap: str) -> dict:
    """`demo_config` dispatching to `grid.dispatch` on `bootstrap` and reading the platform's
    feedback from `grid.feedback`, which this creates."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic("grid.feedback", 1, 1)])
    finally:
        await admin.close()
    return demo_config(tmp_path, kafka={"bootstrap_servers": bootstrap, "topic": "grid.dispatch",
                                        "feedback_topic": "grid.feedback", "retry_backoff_s": 0.5})


def die_with_parent() -> None:
    """`preexec_fn`: the kernel SIGKILLs the child when the test process dies, however it dies
    (a CI timeout, a SIGKILL), so an aborted run leaves no service behind. Linux; the forking
    thread must outlive the child, which the event loop's thread does."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


async def stop_all(services) -> None:
    """SIGTERM every service at once and wait for all; one that hangs is killed and reported
    after the others are gone, never left running."""
    live = [s for s in services if s.proc is not None and s.proc.returncode is None]
    results = await asyncio.gather(*(s.stop() for s in live), return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors:
        raise errors[0]


async def wait_for(predicate, timeout: float, what: str, proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.returncode is not None:
            raise AssertionError(f"service exited with {proc.returncode} while waiting for {what}")
        value = await predicate()
        if value:
            return value
        await asyncio.sleep(0.5)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class ServiceProcess:
    """Start with `async with ServiceProcess(tmp_path, doc) as svc:`; `svc.base` is its URL."""

    def __init__(self, tmp_path: Path, doc: dict, *, ready_timeout_s: float = 60) -> None:
        self.tmp_path, self.ready_timeout_s = tmp_path, ready_timeout_s
        # A fresh admin token for the harness itself; tests add their own roles to the config.
        self.token, record = new_token("test harness", "admin")
        doc.setdefault("api", {}).setdefault("auth", {}).setdefault("tokens", []).append(record.model_dump(exclude_none=True))
        self.headers = {"Authorization": f"Bearer {self.token}"}
        if doc.get("sensors"):  # its own dead letters, not the shared data dir's
            doc["sensors"].setdefault("deadletters", {}).setdefault("path", str(tmp_path / "deadletters.sqlite3"))
        self.config = tmp_path / "service.yaml"
        self.config.write_text(yaml.safe_dump(doc, allow_unicode=True))
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: asyncio.subprocess.Process | None = None
        self.started_at = 0.0
        self.ready_timeout_s = 60.0  # tests that start several model-loading processes at once raise it

    async def __aenter__(self) -> ServiceProcess:
        self.started_at = time.monotonic()
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "xueliang.cli", "run", "-c", str(self.config), "--port", str(self.port),
            cwd=REPO, stdout=asyncio.subprocess.DEVNULL, stderr=open(self.tmp_path / "service.log", "wb"),
            env={**os.environ, "XUELIANG_DATA_DIR": str(DATA_DIR)}, preexec_fn=die_with_parent,
        )
        async with httpx.AsyncClient(base_url=self.base, timeout=5, headers=self.headers) as api:
            async def ready():
                try:
                    return (await api.get("/readyz")).status_code == 200
                except httpx.TransportError:
                    return False

            try:
                await wait_for(ready, self.ready_timeout_s, "readiness", self.proc)
            except AssertionError as exc:  # CI shows only this: say why
                raise AssertionError(f"{exc}; the service's log ends:\n{self.log()[-4000:]}") from None
        return self

    async def stop(self) -> int:
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(self.proc.wait(), 30)
        except asyncio.TimeoutError:  # never leave a process behind; the caller still sees the hang
            self.proc.send_signal(signal.SIGUSR1)  # the service logs its threads' and tasks' stacks
            await asyncio.sleep(2)
            self.proc.kill()
            await self.proc.wait()
            log = self.log()
            at = log.rfind('"process.stacks"')
            tail = log[max(0, log.rfind("\n", 0, max(at, 0)) - 2000):] if at >= 0 else log[-2000:]
            raise AssertionError(f"service did not stop within 30 s of SIGTERM; log: {tail[-30000:]}") from None

    async def __aexit__(self, *exc) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()

    def log(self) -> str:
        return (self.tmp_path / "service.log").read_text(errors="replace")
