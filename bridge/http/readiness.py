"""What `/readyz` checks: is this service doing its job, and if not, why (one reason per line).

Not ready (503, `reasons` in the body) while it starts or stops, when the outbox cannot be written,
when Kafka dispatch has been failing longer than `readiness.dispatch_failing_s`, when the disk
guard has tripped, or when fewer than `readiness.min_cameras_online` of the running cameras are
online (counted after `readiness.startup_grace_s`). `/healthz` stays a liveness check: it only
says the process answers.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from bridge.reliability_config import ReadinessConfig


class Readiness:
    def __init__(self, cfg: ReadinessConfig, *, started: Callable[[], bool], writer=None, guard=None,
                 dispatcher: Callable[[], Any] = lambda: None, camera_states: Callable[[], list[str]] = lambda: [],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.cfg, self.started, self.writer, self.guard = cfg, started, writer, guard
        self.dispatcher, self.camera_states, self.clock = dispatcher, camera_states, clock
        self.t0 = clock()

    def reasons(self) -> list[str]:
        now, cfg, out = self.clock(), self.cfg, []
        if not self.started():
            out.append("starting or stopping")
        if self.writer is not None and self.writer.write_error is not None:
            out.append(f"outbox cannot be written: {self.writer.write_error}")
        if self.writer is not None and self.writer.held:
            out.append(f"{len(self.writer.held)} events held in memory until the outbox can be written")
        d = self.dispatcher()
        if d is not None and d.failing_since is not None and now - d.failing_since > cfg.dispatch_failing_s:
            out.append(f"kafka dispatch failing for {now - d.failing_since:.0f} s (limit {cfg.dispatch_failing_s:g} s): "
                       f"{d.last_error}")
        if self.guard is not None and self.guard.level:
            out.append(self.guard.reason or f"disk guard: {self.guard.state}")
        states = self.camera_states()
        if states and cfg.min_cameras_online > 0 and now - self.t0 >= cfg.startup_grace_s:
            online = sum(s == "online" for s in states)
            if online < cfg.min_cameras_online * len(states):
                out.append(f"{online} of {len(states)} cameras online, below {cfg.min_cameras_online:.0%}")
        return out

    def detail(self) -> dict[str, Any]:
        d = self.dispatcher()
        return {
            "disk": self.guard.detail() if self.guard is not None else None,
            "outbox_held": len(self.writer.held) if self.writer is not None else 0,
            "dispatch": None if d is None else {"connected": d.connected, "failing_since_s": None if d.failing_since is None
                                                else round(self.clock() - d.failing_since, 1), "last_error": d.last_error},
        }
