"""Credential redaction. RTSP URLs carry user:password; they must never reach a log, API or event."""
from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^@/\s]*)@")
_QUERY_SECRET = re.compile(r"(?i)([?&](?:password|passwd|pwd|token|auth|key|secret)=)[^&#\s]*")


def redact_url(url: str) -> str:
    """Return `url` with any password or token replaced by `***`; the user name stays visible."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact_text(url)
    if parts.password is not None or parts.username is not None:
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        user = parts.username or ""
        userinfo = f"{user}:***" if parts.password is not None else user
        parts = parts._replace(netloc=f"{userinfo}@{host}")
    return _QUERY_SECRET.sub(r"\1***", urlunsplit(parts))


def redact_text(text: str) -> str:
    """Redact every URL-like userinfo and secret query parameter inside free text (error messages)."""
    text = _USERINFO.sub(lambda m: f"{m['scheme']}{_mask_userinfo(m['userinfo'])}@", text)
    return _QUERY_SECRET.sub(r"\1***", text)


def _mask_userinfo(userinfo: str) -> str:
    user, sep, _ = userinfo.partition(":")
    return f"{user}:***" if sep else user
