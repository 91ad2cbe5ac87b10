"""Latest-wins hand-off from a decode thread to the event loop.

A slow consumer must never make a decoder queue frames without bound: the newest frame replaces
the one waiting, and every replaced frame is counted as dropped.
"""
from __future__ import annotations

import asyncio
import threading
from typing import Generic, TypeVar

T = TypeVar("T")


class LatestSlot(Generic[T]):
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._lock = threading.Lock()
        self._item: T | None = None
        self._ready = asyncio.Event()
        self.dropped = 0
        self.put_count = 0

    def put(self, item: T) -> None:
        """Called from any thread. Replaces a waiting item (counted as dropped)."""
        with self._lock:
            if self._item is not None:
                self.dropped += 1
            self._item = item
            self.put_count += 1
        self._loop.call_soon_threadsafe(self._ready.set)

    async def get(self) -> T:
        while True:
            await self._ready.wait()
            with self._lock:
                item, self._item = self._item, None
                self._ready.clear()
            if item is not None:
                return item
