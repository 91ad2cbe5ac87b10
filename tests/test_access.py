"""Access control on every route of the app: no token -> 401 (but /healthz and the login), each
role gets exactly what it may. Routes are read from `app.routes`, so a route added later is
checked too: it needs a viewer unless listed here as stricter or public."""
from __future__ import annotations

import re

import httpx
import pytest
from fastapi.routing import APIRoute

from bridge.http.auth import TokenStore, new_token, read_token_file
from tests.console_app import make_console_app
from tests.helpers import xueliang

PUBLIC = {("GET", "/healthz"), ("POST", "/login"), ("POST", "/logout"), ("GET", "/")}
ADMIN = {("GET", "/audit"), ("POST", "/outbox/parked/resend")}
OPERATOR = {("POST", "/incidents/{incident_id}/review")}  # any operator (or admin): a review is not tuning
TUNER_PREFIX = "/tuning/cameras/{camera_id}"  # an operator assigned to the camera, or an admin
PARAMS = {"camera_id": "table", "name": "0" * 32 + ".jpg", "event_id": "e0", "job_id": "nope", "incident_id": "nope"}


def api_routes(routes, prefix: str = ""):
    """(method, path) of every API route, through included routers (FastAPI keeps them nested)."""
    for r in routes:
        if isinstance(r, APIRoute):
            yield from ((m, prefix + r.path) for m in sorted(r.methods))
        elif hasattr(r, "original_router"):
            yield from api_routes(r.original_router.routes, prefix + r.include_context.prefix)


def _routes():
    import shutil
    import tempfile
    from pathlib import Path

    tmp = Path(tempfile.mkdtemp(prefix="routes-"))
    ca = make_console_app(tmp)
    try:
        return sorted(set(api_routes(ca.app.routes)))
    finally:
        ca.close()
        shutil.rmtree(tmp, ignore_errors=True)


ROUTES = _routes()


def need(method: str, path: str) -> str:
    if (method, path) in PUBLIC:
        return "public"
    if (method, path) in ADMIN:
        return "admin"
    if (method, path) in OPERATOR:
        return "operator"
    if path.startswith(TUNER_PREFIX):
        return "tuner"
    return "viewer"


@pytest.fixture
async def console(tmp_path):
    ca = make_console_app(tmp_path)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=ca.app), base_url="http://test") as c:
        yield ca, c
    ca.close()


async def call(c: httpx.AsyncClient, method: str, path: str, headers: dict, camera: str = "table") -> int:
    url = re.sub(r"\{(\w+)\}", lambda m: camera if m[1] == "camera_id" else PARAMS[m[1]], path)
    # Last-Event-ID "x" makes the SSE route answer 422 once past access control instead of streaming.
    headers = {**headers, "Last-Event-ID": "x"}
    kwargs = {"json": {}} if method in ("POST", "PUT", "PATCH") else {}
    return (await c.request(method, url, headers=headers, **kwargs)).status_code


def test_every_route_is_listed():
    assert ("GET", "/events") in ROUTES and ("POST", "/tuning/cameras/{camera_id}/config") in ROUTES
    assert len(ROUTES) >= 20


@pytest.mark.parametrize("method,path", ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
async def test_role_enforcement(console, method, path):
    ca, c = console
    level = need(method, path)
    anon = await call(c, method, path, {})
    bad = await call(c, method, path, {"Authorization": "Bearer xl_nope_nope"})
    if level == "public":
        assert anon not in (401, 403) and bad not in (401, 403)
        return
    assert anon == 401 and bad == 401, (anon, bad)
    status = {who: await call(c, method, path, ca.headers(who)) for who in ("viewer", "operator", "gate-operator", "admin")}
    allowed = {"viewer": {"viewer", "operator", "gate-operator", "admin"}, "admin": {"admin"},
               "tuner": {"operator", "admin"}, "operator": {"operator", "gate-operator", "admin"}}[level]
    for who, code in status.items():
        if who in allowed:
            assert code not in (401, 403), (who, code)
        else:
            assert code == 403, (who, code)


async def test_operator_cannot_tune_another_camera(console):
    ca, c = console
    assert (await c.get("/tuning/cameras/gate", headers=ca.headers("operator"))).status_code == 403
    assert (await c.get("/tuning/cameras/gate", headers=ca.headers("gate-operator"))).status_code == 200


async def test_login_cookie_session_and_audit(console):
    ca, c = console
    assert (await c.post("/login", json={"token": "xl_nope_nope"})).status_code == 401
    res = await c.post("/login", json={"token": ca.tokens["viewer"]})
    assert res.status_code == 200 and res.json()["role"] == "viewer"
    cookie = res.headers["set-cookie"]
    assert "HttpOnly" in cookie and "samesite=strict" in cookie.lower()
    assert ca.tokens["viewer"] not in cookie  # the session names the token id, never the token
    assert (await c.get("/events")).status_code == 200  # the cookie alone is enough
    assert (await c.get("/audit")).status_code == 403
    # a change from another site's page is refused even with the cookie
    res = await c.post("/tuning/cameras/table/check", json={}, headers={"Origin": "http://evil.example"})
    assert res.status_code == 403
    await c.post("/logout")
    c.cookies.clear()
    assert (await c.get("/events")).status_code == 401
    audit = (await c.get("/audit", headers=ca.headers("admin"))).json()
    assert [a["action"] for a in audit][:2] == ["login", "login.failed"]
    assert audit[0]["actor"] == "viewer" and audit[0]["at"]


async def test_cors_is_off_by_default(console):
    ca, c = console
    res = await c.options("/events", headers={"Origin": "http://elsewhere.example", "Access-Control-Request-Method": "GET"})
    assert "access-control-allow-origin" not in res.headers
    res = await c.get("/events", headers={**ca.headers("viewer"), "Origin": "http://elsewhere.example"})
    assert "access-control-allow-origin" not in res.headers


async def test_clear_422_names_the_field(console):
    ca, c = console
    res = await c.get("/events", params={"limit": 0}, headers=ca.headers("viewer"))
    assert res.status_code == 422 and res.json()["detail"][0]["field"] == "limit"


def test_tokens_are_stored_hashed_and_cli_prints_once(tmp_path):
    path = tmp_path / "tokens.yaml"
    res = xueliang("tokens", "add", "--file", str(path), "--role", "operator", "--cameras", "table", "alice")
    assert res.returncode == 0, res.stderr
    token = res.stdout.strip()
    assert token.startswith("xl_") and token not in path.read_text()
    (rec,) = read_token_file(path)
    assert rec.role == "operator" and rec.cameras == ["table"] and len(rec.salt) == 32
    store = TokenStore(path=path)
    who = store.verify(token)
    assert who is not None and who.name == "alice" and who.may_tune("table") and not who.may_tune("gate")
    assert store.verify(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    listing = xueliang("tokens", "list", "--file", str(path))
    assert "alice" in listing.stdout and token not in listing.stdout
    # revoking takes effect on the running store: it re-reads the file when it changes
    assert xueliang("tokens", "revoke", "--file", str(path), "alice").returncode == 0
    assert store.verify(token) is None
    bad = xueliang("tokens", "add", "--file", str(path), "--role", "operator", "bob")
    assert bad.returncode == 2 and "--cameras" in bad.stderr


def test_same_secret_different_salts():
    _, a = new_token("a", "viewer")
    _, b = new_token("b", "viewer")
    assert a.salt != b.salt and a.hash != b.hash
