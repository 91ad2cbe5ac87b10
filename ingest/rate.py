"""Frames per second over a sliding window, safe to tick from one thread and read from another."""
from __future__ import annotations

import time
from collections import deque


class RateMeter:
    def __init__(self, window_s: float = 10.0) -> None:
        self.window_s = window_s
        self._ticks: deque[float] = deque()

    def tick(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self._ticks.append(now)
        while self._ticks and self._ticks[0] < now - self.window_s:
            self._ticks.popleft()

    def rate(self, now: float | None = None) -> float:
        """Events per second over the last window (a camera that went silent decays to 0)."""
        now = time.monotonic() if now is None else now
        ticks = list(self._ticks)  # a copy: the writer may append meanwhile
        recent = [t for t in ticks if t >= now - self.window_s]
        if len(recent) < 2:
            return 0.0
        # Over the span actually covered, so a camera that just came up is not under-reported.
        span = max(now - recent[0], (recent[-1] - recent[0]) * len(recent) / (len(recent) - 1))
        return len(recent) / span if span > 0 else 0.0
