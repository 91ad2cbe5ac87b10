"""`/readyz` that means ready, `/healthz` that stays liveness, failed-login limits, parked records via the API."""
from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from prometheus_client import REGISTRY

from bridge.http.app import ApiState, create_app
from bridge.store.audit import ConsoleDb
from bridge.http.auth import Sessions, TokenStore, new_token
from bridge.store.disk_guard import DiskGuard
from bridge.kafka.dispatch import KafkaConfig, KafkaDispatcher
from bridge.events.evidence_store import LocalEvidenceStore
from bridge.http.hub import Hub
from bridge.http.login_limit import LoginLimiter
from bridge.store.outbox import EventStore
from bridge.store.parked_records import park_row
from bridge.store.outbox_writer import OutboxWriter
from bridge.http.readiness import Readiness
from bridge.reliability_config import DiskGuardConfig, LoginLimitConfig, ReadinessConfig
from bridge.http.security import AuthContext
from tests.brokers import free_port
from tests.test_dispatch import make_event, running


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
async def parts(tmp_path):
    store = EventStore(tmp_path / "outbox.sqlite3")
    admin, admin_rec = new_token("admin", "admin")
    viewer, viewer_rec = new_token("viewer", "viewer")
    db = ConsoleDb(tmp_path / "console.sqlite3")
    limiter = LoginLimiter(LoginLimitConfig(window_s=300, max_failures_per_client=5, max_failures_per_account=3))
    auth = AuthContext(TokenStore([admin_rec, viewer_rec]), Sessions(600), db, limiter=limiter)
    guard = DiskGuard(DiskGuardConfig(), tmp_path, tmp_path / "evidence")
    guard.check()
    writer = OutboxWriter(store, guard, 100, lambda *a: asyncio.sleep(0))
    states = ["online", "online", "offline"]
    clock = Clock()
    dispatcher: list[KafkaDispatcher] = []
    ready = Readiness(ReadinessConfig(dispatch_failing_s=1.0, min_cameras_online=0.7, startup_grace_s=60),
                      started=lambda: True, writer=writer, guard=guard,
                      dispatcher=lambda: dispatcher[0] if dispatcher else None, camera_states=lambda: states,
                      clock=clock)
    notified: list[int] = []
    app = create_app(ApiState(store, Hub(), LocalEvidenceStore(tmp_path / "evidence"), lambda: [], lambda: True,
                              auth=auth, readiness=ready, notify_dispatch=lambda: notified.append(1)))

    def client(token: str | None = None, host: str = "127.0.0.1") -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(host, 40000)), base_url="http://test",
                                 headers={"Authorization": f"Bearer {token}"} if token else {})

    yield {"store": store, "admin": admin, "viewer": viewer, "db": db, "guard": guard, "writer": writer,
           "states": states, "clock": clock, "dispatcher": dispatcher, "client": client, "notified": notified}
    store.close()


async def test_readyz_reasons_and_healthz_stays_live(parts, tmp_path) -> None:
    async with parts["client"](parts["viewer"]) as c:
        body = (await c.get("/readyz")).json()
        assert body["ready"] is True and body["reasons"] == [] and body["disk"]["state"] == "ok"

        parts["clock"].t += 61  # past the start-up grace: 2 of 3 cameras online is below 70 %
        r = await c.get("/readyz")
        assert r.status_code == 503 and r.json()["reasons"] == ["2 of 3 cameras online, below 70%"]
        parts["states"][2] = "online"
        assert (await c.get("/readyz")).status_code == 200

        # A real dispatcher against a port nobody listens on: failing, then failing too long.
        d = KafkaDispatcher(parts["store"], KafkaConfig(bootstrap_servers=f"127.0.0.1:{free_port()}",
                                                        retry_backoff_s=0.1, retry_backoff_max_s=0.2,
                                                        request_timeout_ms=1000))
        parts["dispatcher"].append(d)
        async with running(d):
            deadline = time.monotonic() + 30
            while d.failing_since is None and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            assert d.failing_since is not None
            parts["clock"].t = d.failing_since + 0.5
            assert (await c.get("/readyz")).status_code == 200  # failing, not for long yet
            parts["clock"].t = d.failing_since + 5
            r = await c.get("/readyz")
            assert r.status_code == 503
            assert r.json()["reasons"][0].startswith("kafka dispatch failing for 5 s (limit 1 s)")
            assert r.json()["dispatch"]["connected"] is False
            assert (await c.get("/healthz")).status_code == 200  # liveness: the process answers
        parts["dispatcher"].clear()

        parts["guard"].tripped("evidence", OSError(28, "No space left on device"))
        parts["writer"].write_error = "OperationalError('database or disk is full')"
        reasons = (await c.get("/readyz")).json()["reasons"]
        assert reasons[0] == "outbox cannot be written: OperationalError('database or disk is full')"
        assert reasons[1].startswith("disk guard: evidence_refused")
        assert (await c.get("/healthz")).status_code == 200


def limited(scope: str) -> float:
    return REGISTRY.get_sample_value("xueliang_login_rate_limited_total", {"scope": scope}) or 0.0


async def test_failed_logins_are_limited_per_account_and_per_client(parts) -> None:
    admin_id = parts["admin"].split("_")[1]
    wrong = f"xl_{admin_id}_not-the-secret"
    before = limited("account")
    async with parts["client"](host="127.0.0.2") as c:
        for _ in range(3):
            assert (await c.post("/login", json={"token": wrong})).status_code == 401
        r = await c.post("/login", json={"token": wrong})
        assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0 and "account" in r.json()["detail"]
    async with parts["client"](host="127.0.0.3") as c:  # another client, same account: refused too
        assert (await c.post("/login", json={"token": parts["admin"]})).status_code == 429
        assert (await c.post("/login", json={"token": parts["viewer"]})).status_code == 200  # other accounts are fine
    assert limited("account") == before + 2

    before = limited("client")
    async with parts["client"](host="127.0.0.4") as c:  # one client trying many token ids, as bearer tokens
        codes = [(await c.get("/events", headers={"Authorization": f"Bearer xl_guess{i:02d}_x"})).status_code
                 for i in range(7)]
        assert codes == [401] * 5 + [429] * 2
    async with parts["client"](parts["viewer"], host="127.0.0.5") as c:
        assert (await c.get("/events")).status_code == 200  # other clients are not affected
    async with parts["client"](parts["viewer"], host="127.0.0.4") as c:
        # A token this process has verified before still works from the limited client: telling
        # it needs the whole token, so letting it pass helps no guesser (and keeps clients behind
        # one NAT address working while someone there mistypes).
        assert (await c.get("/events")).status_code == 200
    assert limited("client") == before + 2
    actions = [(e["action"], e["detail"].get("scope")) for e in parts["db"].entries()]
    assert actions.count(("login.rate_limited", "account")) == 1  # one entry per limit and window
    assert actions.count(("login.rate_limited", "client")) == 1
    assert actions.count(("login.failed", None)) == 3


async def test_parked_records_listed_and_resent_by_an_admin_only(parts) -> None:
    store = parts["store"]
    seqs = [await store.append(make_event("330102001001", n)) for n in range(3)]
    await store.on_connection(lambda db: park_row(db, seqs[1], "MessageSizeTooLargeError()", 3))
    assert await store.backlog() == 2
    async with parts["client"](parts["viewer"]) as c:
        page = (await c.get("/outbox/parked")).json()
        assert page["count"] == 1 and page["items"][0]["seq"] == seqs[1]
        assert page["items"][0]["error"] == "MessageSizeTooLargeError()" and "payload" not in page["items"][0]
        assert (await c.get("/readyz")).json()["outbox_parked"] == 1
        assert (await c.post("/outbox/parked/resend", json={"all": True})).status_code == 403
    async with parts["client"](parts["admin"]) as c:
        assert (await c.post("/outbox/parked/resend", json={})).status_code == 422
        assert (await c.post("/outbox/parked/resend", json={"seqs": [seqs[0]]})).status_code == 404
        r = await c.post("/outbox/parked/resend", json={"seqs": [seqs[1]]})
        assert r.status_code == 200 and r.json() == {"resent": [seqs[1]]}
    assert await store.backlog() == 3 and parts["notified"] == [1]
    entry = parts["db"].entries()[0]
    assert (entry["action"], entry["actor"], entry["detail"]) == ("outbox.resend", "admin", {"seqs": [seqs[1]]})
