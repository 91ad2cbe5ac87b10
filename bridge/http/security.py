"""Who may call what: FastAPI dependencies over `bridge.http.auth`, and the login/audit routes.

Every route needs at least a viewer unless its path is in `PUBLIC_PATHS`: the app installs
`authenticate` as a global dependency, so a route added later is protected by default. Stricter
routes add `require("admin")` or `tuner` (an operator assigned to the path's camera).
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import structlog
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from bridge.store.audit import ConsoleDb
from bridge.http.auth import Principal, Sessions, TokenStore, principal_of, split_token
from bridge.http.login_limit import LoginLimiter
from bridge.bridge_metrics import LOGIN_FAILURES, LOGIN_LIMITED
from bridge.reliability_config import LoginLimitConfig

log = structlog.get_logger(__name__)

COOKIE = "xl_session"
#: The only paths served without a token: liveness, the login itself, and the console's static
#: shell (HTML/JS/CSS with no data in it; every fetch it makes needs the session).
PUBLIC_PATHS = frozenset({"/healthz", "/login", "/logout", "/"})
_SAFE = {"GET", "HEAD", "OPTIONS"}
bearer = HTTPBearer(auto_error=False, description="API token `xl_<id>_<secret>` (`xueliang tokens add`).")


@dataclass
class AuthContext:
    tokens: TokenStore
    sessions: Sessions
    db: ConsoleDb
    secure_cookie: bool = False
    limiter: LoginLimiter = field(default_factory=lambda: LoginLimiter(LoginLimitConfig()))

    async def audit(self, who: Principal | None, action: str, target: str | None = None,
                    detail: dict[str, Any] | None = None) -> None:
        await asyncio.to_thread(self.db.record, who.name if who else "anonymous", action, target, detail,
                                who.role if who else None)


def _unauthorized(msg: str) -> HTTPException:
    return HTTPException(401, msg, headers={"WWW-Authenticate": "Bearer"})


async def _limit(ctx: AuthContext, request: Request, token: str) -> tuple[str, str | None]:
    """Refuse (429) an attempt from a client, or naming a token id, with too many recent failures."""
    client = request.client.host if request.client is not None else "unknown"
    parts = split_token(token)
    account = parts[0] if parts else None
    hit = ctx.limiter.blocked(client, account)
    if hit is not None and not await asyncio.to_thread(ctx.tokens.known, token):  # known-good tokens still pass
        scope, retry_after, first = hit
        LOGIN_LIMITED.labels(scope).inc()
        if first:  # one audit entry per limit and window, not one per refused attempt
            await ctx.audit(None, "login.rate_limited", account, {"client": client, "scope": scope})
        raise HTTPException(429, f"too many failed logins from this {scope}; try again in {retry_after:.0f} s",
                            headers={"Retry-After": str(int(retry_after + 0.999))})
    return client, account


async def _failed(ctx: AuthContext, client: str, account: str | None, where: str) -> None:
    ctx.limiter.failed(client, account)
    LOGIN_FAILURES.labels(where).inc()


async def authenticate(request: Request,
                       creds: HTTPAuthorizationCredentials | None = Security(bearer)) -> Principal | None:
    route = request.scope.get("route")
    if getattr(route, "path", None) in PUBLIC_PATHS:
        return None
    ctx: AuthContext | None = getattr(request.app.state, "auth", None)
    if ctx is None:
        raise _unauthorized("no API tokens are configured on this service")
    if creds is not None:
        client, account = await _limit(ctx, request, creds.credentials)
        who = await asyncio.to_thread(ctx.tokens.verify, creds.credentials)
        if who is None:
            await _failed(ctx, client, account, "bearer")
            raise _unauthorized("Authorization: the bearer token is not valid (unknown, revoked or mistyped)")
    elif (cookie := request.cookies.get(COOKIE)) is not None:
        token_id = ctx.sessions.token_id(cookie)
        record = ctx.tokens.get(token_id) if token_id else None
        if record is None:
            raise _unauthorized(f"cookie {COOKIE}: the session expired or its token was revoked; log in again")
        # SameSite=Strict already keeps other sites' requests from carrying the cookie; refusing a
        # foreign Origin on changes is the second lock.
        origin = request.headers.get("origin")
        if request.method not in _SAFE and origin not in (None, f"{request.url.scheme}://{request.headers.get('host')}"):
            raise HTTPException(403, f"Origin {origin!r}: cross-site changes are refused")
        who = principal_of(record)
    else:
        raise _unauthorized("Authorization: a bearer token (or a session from POST /login) is required")
    request.state.principal = who
    return who


def principal(request: Request) -> Principal:
    who = getattr(request.state, "principal", None)
    if who is None:  # only on a public path, where no handler asks for it
        raise _unauthorized("Authorization: a bearer token is required")
    return who


def require(role: str):
    async def check(request: Request) -> Principal:
        who = principal(request)
        if not who.at_least(role):
            raise HTTPException(403, f"role {who.role!r} may not do this; it needs {role!r}")
        return who

    return check


async def tuner(camera_id: str, request: Request) -> Principal:
    """An operator assigned to `camera_id` (path parameter), or an admin."""
    who = principal(request)
    if not who.may_tune(camera_id):
        what = "tune cameras" if who.role == "viewer" else f"tune camera {camera_id!r} (assigned: {who.cameras})"
        raise HTTPException(403, f"role {who.role!r} ({who.name}) may not {what}")
    return who


class LoginRequest(BaseModel):
    token: str = Field(min_length=1, max_length=512, description="An API token.",
                       examples=["xl_3f9a2c1b_Wq3…"])


class WhoAmI(BaseModel):
    name: str = Field(examples=["alice"])
    role: str = Field(examples=["operator"])
    cameras: list[str] = Field(examples=[["table"]])


class AuditEntry(BaseModel):
    id: int
    at: str
    actor: str
    role: str | None
    action: str = Field(examples=["camera.save"])
    target: str | None = Field(examples=["table"])
    detail: dict[str, Any]


def auth_router(ctx: AuthContext) -> APIRouter:
    r = APIRouter(tags=["access"])

    @r.post("/login", response_model=WhoAmI, responses={401: {"description": "The token is not valid."},
                                                         429: {"description": "Too many failed logins; see Retry-After."}},
            summary="Exchange a token for a session cookie (for the console: EventSource and <img> send no headers).")
    async def login(body: LoginRequest, request: Request, response: Response) -> WhoAmI:
        client, account = await _limit(ctx, request, body.token)
        who = await asyncio.to_thread(ctx.tokens.verify, body.token)
        if who is None:
            await _failed(ctx, client, account, "login")
            await ctx.audit(None, "login.failed", account, {"client": client})
            raise _unauthorized("token: not valid (unknown, revoked or mistyped)")
        ctx.limiter.succeeded(client, account)
        response.set_cookie(COOKIE, ctx.sessions.issue(who.token_id), max_age=int(ctx.sessions.ttl_s),
                            httponly=True, samesite="strict", secure=ctx.secure_cookie, path="/")
        await ctx.audit(who, "login", who.token_id)
        return WhoAmI(name=who.name, role=who.role, cameras=who.cameras)

    @r.post("/logout", status_code=204, summary="End the browser session.")
    async def logout(response: Response) -> Response:
        response.delete_cookie(COOKIE, path="/")
        response.status_code = 204
        return response

    @r.get("/whoami", response_model=WhoAmI)
    async def whoami(request: Request) -> WhoAmI:
        who = principal(request)
        return WhoAmI(name=who.name, role=who.role, cameras=who.cameras)

    @r.get("/audit", response_model=list[AuditEntry], dependencies=[Depends(require("admin"))],
           summary="The audit log, newest first (admin).")
    async def audit(limit: int = Query(100, ge=1, le=1000),
                    before: int | None = Query(None, ge=1, description="Cursor: entries older than this id.")
                    ) -> list[AuditEntry]:
        rows = await asyncio.to_thread(ctx.db.entries, limit, before)
        return [AuditEntry(**row) for row in rows]

    return r
