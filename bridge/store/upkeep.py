"""What keeps a long-running service sound, built from the config in one place: the disk guard and
outbox writer, retention, readiness and the login limiter (docs/reliability.md). The service makes
one `Reliability` and starts its tasks."""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import structlog

from bridge.store.disk_guard import DiskGuard, GuardedEvidenceStore
from bridge.events.evidence_store import EvidenceStore
from bridge.http.login_limit import LoginLimiter
from bridge.store.outbox import EventStore, StoreClosedError
from bridge.store.parked_records import parked_count
from bridge.store.outbox_writer import OutboxWriter, Stored
from bridge.http.readiness import Readiness
from bridge.store.retention import Retention
from bridge.reliability_config import DiskGuardConfig, ReadinessConfig, RetentionConfig

log = structlog.get_logger(__name__)


class UpkeepSettings(Protocol):
    """What the upkeep reads of the service's config (the root passes its `ServiceConfig`)."""

    disk: DiskGuardConfig
    retention: RetentionConfig
    readiness: ReadinessConfig
    api: Any  # `api.auth.login_limit`: the login limiter's settings

    @property
    def outbox_path(self) -> Path: ...

    @property
    def evidence_dir(self) -> Path: ...

    @property
    def deadletters_path(self) -> Path: ...

    @property
    def console_db_path(self) -> Path: ...


class Reliability:
    def __init__(self, cfg: UpkeepSettings, store: EventStore, on_stored: Stored) -> None:
        self.cfg, self.store = cfg, store
        self.guard = DiskGuard(cfg.disk, cfg.outbox_path.parent, cfg.evidence_dir)
        self.guard.check()
        self.writer = OutboxWriter(store, self.guard, cfg.disk.hold_max_events, on_stored)
        self.retention = Retention(cfg.retention, store, cfg.evidence_dir, cfg.deadletters_path, cfg.console_db_path)
        self.login_limiter = LoginLimiter(cfg.api.auth.login_limit)

    def evidence(self, inner: EvidenceStore) -> EvidenceStore:
        """The evidence store the pipelines write to: refused while the disk guard says so."""
        return GuardedEvidenceStore(inner, self.guard)

    def readiness(self, started: Callable[[], bool], dispatcher: Callable[[], Any],
                  camera_states: Callable[[], list[str]]) -> Readiness:
        return Readiness(self.cfg.readiness, started=started, writer=self.writer, guard=self.guard,
                         dispatcher=dispatcher, camera_states=camera_states)

    def tasks(self) -> list[asyncio.Task]:
        out = [asyncio.create_task(self._guard_loop(), name="disk-guard")]
        if self.cfg.retention.enabled:
            out.append(asyncio.create_task(self.retention.run(), name="retention"))
        return out

    async def _guard_loop(self) -> None:
        while True:
            try:
                before = self.guard.level
                await asyncio.to_thread(self.guard.check)  # statvfs: fast, unless a network mount hangs
                if self.guard.level > before:
                    self.retention.wake.set()  # make room now rather than at the next interval
                await (self.writer.flush() if self.writer.held else self.writer.probe())
                await self.store.on_connection(parked_count)  # the parked gauge, also after a CLI resend
            except StoreClosedError:
                raise
            except Exception:  # never the end of the service: logged, tried again
                log.exception("disk_guard.loop_failed")
            await asyncio.sleep(self.cfg.disk.check_interval_s)

    async def stop(self) -> None:
        """Before the outbox closes: write what is held if the disk allows; say what is lost."""
        if self.writer.held:
            await self.writer.flush()
        if self.writer.held:
            log.error("outbox.held_lost_on_stop", events=len(self.writer.held),
                      note="the outbox could not be written until the end")
