"""In-process fan-out of stored events to live subscribers (the SSE stream).

A subscriber that falls behind is cut off rather than buffered without bound; it reconnects
with Last-Event-ID and catches up from the store, so no event is lost to a slow browser.
"""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator


class Subscription:
    def __init__(self, maxsize: int) -> None:
        self.queue: asyncio.Queue[tuple[int, dict] | None] = asyncio.Queue(maxsize)
        self.overflowed = False

    def __aiter__(self) -> AsyncIterator[tuple[int, dict]]:
        return self._iter()

    async def _iter(self) -> AsyncIterator[tuple[int, dict]]:
        while True:
            item = await self.queue.get()
            if item is None:
                return
            yield item


class Hub:
    def __init__(self, maxsize: int = 1024) -> None:
        self.maxsize = maxsize
        self._subs: set[Subscription] = set()

    def subscribe(self) -> Subscription:
        sub = Subscription(self.maxsize)
        self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subs.discard(sub)

    def publish(self, seq: int, event: dict) -> None:
        for sub in list(self._subs):
            try:
                sub.queue.put_nowait((seq, event))
            except asyncio.QueueFull:
                sub.overflowed = True
                self.end(sub)

    def close(self) -> None:
        for sub in list(self._subs):
            self.end(sub)

    def end(self, sub: Subscription) -> None:
        """Detach `sub` and wake its reader with the end marker (dropping one item to make room)."""
        self._subs.discard(sub)
        if sub.queue.full():
            sub.queue.get_nowait()
        sub.queue.put_nowait(None)
