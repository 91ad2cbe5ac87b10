"""API tokens with roles, stored hashed, and the browser session that stands in for one.

A token reads `xl_<id>_<secret>`: the id finds the stored record (name, role, cameras, salt,
scrypt hash of the secret) and the secret is checked in constant time. Only the hash is kept;
the token is shown once, when it is made. A verified token is remembered in memory by a keyed
digest, so scrypt (deliberately slow) runs once per token and process, not on every request.

Browsers cannot put a header on `EventSource` or `<img>` requests, so `POST /login` exchanges a
token for an HttpOnly, SameSite=Strict cookie signed with a per-process key: it names the token id
and an expiry, and every request re-checks that the token still exists (revoking works at once).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

import structlog
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

log = structlog.get_logger(__name__)

Role = Literal["viewer", "operator", "admin"]
RANK: dict[str, int] = {"viewer": 0, "operator": 1, "admin": 2}
ALL_CAMERAS = "*"
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}


class ApiToken(BaseModel):
    """One stored token: never the token itself, only its salted scrypt hash."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^[0-9a-z]{4,32}$", description="Public token id (the part after `xl_`); finds the record.")
    name: str = Field(min_length=1, description="Who holds the token; audit entries name them.")
    role: Role = Field(description="viewer: reads events and cameras; operator: also tunes its cameras; admin: everything.")
    cameras: list[str] = Field(default_factory=list, description="Operator only: camera ids it may tune; `*` for all.")
    salt: str = Field(description="Hex salt of the scrypt hash.")
    hash: str = Field(description="Hex scrypt hash of the token's secret (n=2^14, r=8, p=1).")
    created_at: str | None = Field(None, description="When the token was made (ISO 8601).")


class Principal(BaseModel):
    """Who is calling: what handlers and the audit log see."""

    token_id: str
    name: str
    role: Role
    cameras: list[str] = Field(default_factory=list)

    def at_least(self, role: str) -> bool:
        return RANK[self.role] >= RANK[role]

    def may_tune(self, camera_id: str) -> bool:
        if self.role == "admin":
            return True
        return self.role == "operator" and (ALL_CAMERAS in self.cameras or camera_id in self.cameras)


def hash_secret(secret: str, salt: bytes) -> str:
    return hashlib.scrypt(secret.encode(), salt=salt, **_SCRYPT).hex()


def new_token(name: str, role: Role, cameras: list[str] | None = None) -> tuple[str, ApiToken]:
    """A fresh token and its stored record. The token string exists only in the return value."""
    token_id = secrets.token_hex(4)
    secret = secrets.token_urlsafe(32)
    salt = os.urandom(16)
    record = ApiToken(id=token_id, name=name, role=role, cameras=list(cameras or []), salt=salt.hex(),
                      hash=hash_secret(secret, salt), created_at=datetime.now(timezone.utc).isoformat())
    return f"xl_{token_id}_{secret}", record


def split_token(token: str) -> tuple[str, str] | None:
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != "xl" or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


class TokenFileError(ValueError):
    pass


def read_token_file(path: Path) -> list[ApiToken]:
    if not path.exists():
        return []
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        return [ApiToken.model_validate(t) for t in doc.get("tokens", [])]
    except (yaml.YAMLError, ValidationError, AttributeError) as exc:
        raise TokenFileError(f"{path}: not a valid token file: {exc}") from None


def write_token_file(path: Path, tokens: list[ApiToken]) -> None:
    """Atomic, and readable by the owner only: it holds hashes, not tokens, but still."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("# API tokens (hashed). Manage with `xueliang tokens add|list|revoke`.\n")
        yaml.safe_dump({"tokens": [t.model_dump(exclude_none=True) for t in tokens]}, f, allow_unicode=True,
                       sort_keys=False)
    os.replace(tmp, path)


class TokenStore:
    """Tokens from the config plus a tokens file that is re-read when it changes (no restart)."""

    def __init__(self, tokens: list[ApiToken] = (), path: Path | None = None) -> None:
        self._static = list(tokens)
        self.path = path
        self._mtime: float | None = None
        self._file: list[ApiToken] = []
        self._lock = threading.Lock()
        self._key = secrets.token_bytes(32)  # process-local: keys the verified-token memo
        self._verified: dict[str, str] = {}

    def _records(self) -> dict[str, ApiToken]:
        with self._lock:
            if self.path is not None:
                mtime = self.path.stat().st_mtime if self.path.exists() else None
                if mtime != self._mtime:
                    try:
                        self._file = read_token_file(self.path)
                    except TokenFileError as exc:  # keep the last good set; a half-edited file must not lock everyone out
                        log.error("auth.token_file_invalid", error=str(exc))
                    self._mtime = mtime
                    self._verified.clear()
            return {t.id: t for t in [*self._static, *self._file]}

    def get(self, token_id: str) -> ApiToken | None:
        return self._records().get(token_id)

    def verify(self, token: str) -> Principal | None:
        parts = split_token(token)
        if parts is None:
            return None
        token_id, secret = parts
        record = self.get(token_id)
        if record is None:
            return None
        digest = hmac.new(self._key, token.encode(), hashlib.sha256).hexdigest()
        known = self._verified.get(token_id)
        if known is None or not hmac.compare_digest(known, digest):
            if not hmac.compare_digest(hash_secret(secret, bytes.fromhex(record.salt)), record.hash):
                return None
            self._verified[token_id] = digest
        return principal_of(record)

    def known(self, token: str) -> bool:
        """True for a token this process has verified before (and that is still valid): telling it
        needs the whole token, so a rate limit may let it through without helping a guesser."""
        parts = split_token(token)
        if parts is None or self.get(parts[0]) is None:
            return False
        known = self._verified.get(parts[0])
        digest = hmac.new(self._key, token.encode(), hashlib.sha256).hexdigest()
        return known is not None and hmac.compare_digest(known, digest)

    def __len__(self) -> int:
        return len(self._records())


def principal_of(record: ApiToken) -> Principal:
    return Principal(token_id=record.id, name=record.name, role=record.role, cameras=record.cameras)


class Sessions:
    """Signed, expiring cookie values naming a token id; the key lives only in this process."""

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._key = secrets.token_bytes(32)

    def issue(self, token_id: str, now: float | None = None) -> str:
        body = base64.urlsafe_b64encode(json.dumps({"t": token_id, "e": (now or time.time()) + self.ttl_s}).encode())
        return body.decode() + "." + self._sign(body)

    def token_id(self, value: str, now: float | None = None) -> str | None:
        body, _, sig = value.rpartition(".")
        if not body or not hmac.compare_digest(sig, self._sign(body.encode())):
            return None
        try:
            doc = json.loads(base64.urlsafe_b64decode(body))
        except (ValueError, TypeError):
            return None
        if not isinstance(doc, dict) or doc.get("e", 0) < (now or time.time()):
            return None
        return doc.get("t") if isinstance(doc.get("t"), str) else None

    def _sign(self, body: bytes) -> str:
        return hmac.new(self._key, body, hashlib.sha256).hexdigest()
