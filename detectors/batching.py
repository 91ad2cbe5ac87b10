"""Inference batched across cameras: one thread, one forward pass per model per round.

Camera loops `await batcher.detect(requests)`; the inference thread takes whatever is pending
from all cameras (up to `max_size` images), groups it by model and runs each model once over the
stack, then NMS per image (`YoloDetector.detect_batch`). It waits at most `max_wait_s` for a
batch to fill, and only while fewer than `max_size` images are pending: a busy service batches
because frames pile up while the previous round runs, an idle one adds next to no latency.

Bounded by construction: a camera loop awaits its answer before it takes its next frame (which
waits in its latest-wins slot, where newer frames replace it and are counted), so at most one
request per camera and model is ever pending here.
"""
from __future__ import annotations

import asyncio
import threading
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import structlog

from detectors.detections import Detections
from detectors.yolo import YoloDetector

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class DetectRequest:
    """One image for one model, with the classes that image's camera watches (None: all)."""

    detector: YoloDetector
    image: np.ndarray
    classes: list[int] | None = None
    size: tuple[int, int] | None = None  # (h, w) model input; None: the model's own size (see YoloDetector)


@dataclass
class _Pending:
    request: DetectRequest
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future


class InferenceBatcher:
    def __init__(self, max_size: int = 1, max_wait_s: float = 0.002, name: str = "inference") -> None:
        if max_size < 1:
            raise ValueError(f"max_size must be at least 1, got {max_size}")
        self.max_size = max_size
        self.max_wait_s = max_wait_s
        self._pending: list[_Pending] = []
        self._cond = threading.Condition()
        self._closed = False
        self.batches = 0  # forward passes run, and images through them: images / batches = mean size
        self.images = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    async def detect(self, requests: list[DetectRequest]) -> list[Detections]:
        """Detections for each request, in order; raises what the model raised."""
        if not requests:
            return []
        loop = asyncio.get_running_loop()
        items = [_Pending(r, loop, loop.create_future()) for r in requests]
        with self._cond:
            if self._closed:
                raise RuntimeError("inference batcher is closed")
            self._pending.extend(items)
            self._cond.notify()
        return list(await asyncio.gather(*(i.future for i in items)))

    def close(self) -> None:
        """Finish what is pending, then stop the thread."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join()

    def _take(self) -> list[_Pending] | None:
        with self._cond:
            self._cond.wait_for(lambda: self._pending or self._closed)
            if not self._pending:
                return None
            if len(self._pending) < self.max_size and self.max_wait_s > 0 and not self._closed:
                self._cond.wait_for(lambda: len(self._pending) >= self.max_size or self._closed,
                                    timeout=self.max_wait_s)
            batch, self._pending = self._pending[:self.max_size], self._pending[self.max_size:]
            return batch

    def _run(self) -> None:
        while (batch := self._take()) is not None:
            groups: dict[tuple, list[_Pending]] = defaultdict(list)
            for p in batch:
                groups[(id(p.request.detector), p.request.size)].append(p)
            for items in groups.values():
                det = items[0].request.detector
                try:
                    results = det.detect_batch([p.request.image for p in items], [p.request.classes for p in items],
                                               items[0].request.size)
                except Exception as exc:  # handed to each waiting camera, which logs and counts it
                    log.warning("inference.batch_failed", model=det.model_name, size=len(items), error=repr(exc))
                    for p in items:
                        _hand_back(p, None, exc)
                    continue
                self.batches += 1
                self.images += len(items)
                for p, r in zip(items, results):
                    _hand_back(p, r, None)


def _hand_back(p: _Pending, result, exc: BaseException | None) -> None:
    try:
        p.loop.call_soon_threadsafe(_settle, p.future, result, exc)
    except RuntimeError as e:  # that camera's loop has closed: nobody is waiting for the answer
        log.warning("inference.loop_closed", error=repr(e))


def _settle(future: asyncio.Future, result, exc: BaseException | None) -> None:
    if future.done():  # the camera's task was cancelled while its frame was in the model
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)
