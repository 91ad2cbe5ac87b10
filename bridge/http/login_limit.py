"""Failed authentications, rate-limited per client address and per token id (the "account").

Counted over a sliding window (`api.auth.login_limit.window_s`): once a client or a token id has
that many failures, further attempts from it (or naming it) are refused with 429 and Retry-After
until the oldest failure leaves the window, without checking the token at all, unless the token
is one this process has verified before (`TokenStore.known`: recognising it needs the whole token,
so that helps no guesser). A successful login clears the client's and the token id's failures. In
memory: a restart forgets them.

Behind a reverse proxy every client has the proxy's address; the per-client limit then counts
everyone together (raise it, or rely on the per-account one).
"""
from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from bridge.reliability_config import LoginLimitConfig

_MAX_KEYS = 50_000


class LoginLimiter:
    def __init__(self, cfg: LoginLimitConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.cfg, self.clock = cfg, clock
        self._fails: dict[tuple[str, str], deque[float]] = {}
        self._announced: set[tuple[str, str]] = set()  # limits already audited in their current window

    def _window(self, key: tuple[str, str], now: float) -> deque[float]:
        q = self._fails.get(key)
        if q is None:
            return deque()
        while q and q[0] <= now - self.cfg.window_s:
            q.popleft()
        if not q:
            del self._fails[key]
            self._announced.discard(key)
        return q

    def blocked(self, client: str, account: str | None) -> tuple[str, float, bool] | None:
        """(scope, retry-after seconds, first refusal in this window) when an attempt must be refused."""
        now = self.clock()
        for scope, who, limit in (("client", client, self.cfg.max_failures_per_client),
                                  ("account", account, self.cfg.max_failures_per_account)):
            if who is None:
                continue
            key = (scope, who)
            q = self._window(key, now)
            if len(q) >= limit:
                first = key not in self._announced
                self._announced.add(key)
                return scope, max(1.0, q[-limit] + self.cfg.window_s - now), first
        return None

    def failed(self, client: str, account: str | None) -> None:
        now = self.clock()
        if len(self._fails) > _MAX_KEYS:  # many addresses: forget those whose window has passed
            for key in list(self._fails):
                self._window(key, now)
        for key in (("client", client), ("account", account)):
            if key[1] is not None:
                self._fails.setdefault(key, deque()).append(now)

    def succeeded(self, client: str, account: str | None) -> None:
        for key in (("client", client), ("account", account)):
            self._fails.pop(key, None)
            self._announced.discard(key)
