"""The disk guard: when the disk fills, refuse new evidence first, then hold new events, and resume by itself.

Two thresholds of free space (`disk.evidence_min_free_bytes` > `disk.events_min_free_bytes`):

* below the first, new evidence files are not written; events still go out, without them
  (`GuardedEvidenceStore.put` returns None and the event's evidence field stays empty);
* below the second, new events are held in memory by `bridge.store.outbox_writer.OutboxWriter` and
  written to the outbox, in order, once space returns.

Each transition is logged once; `xueliang_disk_guard_level` and `xueliang_disk_free_bytes` show the
state and `/readyz` names it. A little above each threshold (5 %) counts as space returned, so
the guard does not flap on the edge.
"""
from __future__ import annotations

import os
from pathlib import Path

import structlog

from bridge.events.evidence_store import EvidenceStore, StoredItem
from bridge.bridge_metrics import DISK_FREE, DISK_LEVEL, EVIDENCE_REFUSED
from bridge.reliability_config import DiskGuardConfig

log = structlog.get_logger(__name__)

OK, NO_EVIDENCE, NO_EVENTS = 0, 1, 2
_LEVELS = {OK: "ok", NO_EVIDENCE: "evidence_refused", NO_EVENTS: "events_held"}
_HYSTERESIS = 1.05


def free_bytes(path: Path) -> int:
    """Free bytes for an unprivileged writer on the filesystem of `path` (or of its nearest existing parent)."""
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


class DiskGuard:
    """Free space of the outbox's and the evidence's filesystems against the two thresholds.

    `level` is OK, NO_EVIDENCE or NO_EVENTS; `check()` re-reads the free space. A failed write
    (`tripped()`) raises the level at once, until the next check finds space again.
    """

    def __init__(self, cfg: DiskGuardConfig, outbox_dir: Path, evidence_dir: Path) -> None:
        self.cfg = cfg
        self.paths = {"outbox": Path(outbox_dir), "evidence": Path(evidence_dir)}
        self.free: dict[str, int] = {}
        self.evidence_refused = False
        self.events_held = False
        self.reason: str | None = None

    @property
    def level(self) -> int:
        return NO_EVENTS if self.events_held else NO_EVIDENCE if self.evidence_refused else OK

    @property
    def state(self) -> str:
        return _LEVELS[self.level]

    def check(self) -> int:
        before = self.level
        if not self.cfg.enabled:  # only failed writes trip it, and each check resets it
            self.events_held = self.evidence_refused = False
            self._changed(before, "disk guard disabled")
            return OK
        self.free = {name: free_bytes(p) for name, p in self.paths.items()}
        for name, n in self.free.items():
            DISK_FREE.labels(name).set(n)
        self.events_held = self._below(self.free["outbox"], self.cfg.events_min_free_bytes, self.events_held)
        self.evidence_refused = self.events_held or self._below(
            self.free["evidence"], self.cfg.evidence_min_free_bytes, self.evidence_refused)
        self._changed(before, "free space")
        return self.level

    @staticmethod
    def _below(free: int, threshold: int, tripped: bool) -> bool:
        return free < (threshold * _HYSTERESIS if tripped else threshold)

    def tripped(self, what: str, error: BaseException) -> None:
        """A write failed for want of space (or any I/O error): refuse `what` until the next check."""
        before = self.level
        if what == "events":
            self.events_held = True
        self.evidence_refused = True
        self._changed(before, f"{what} write failed: {error!r}")

    def _changed(self, before: int, why: str) -> None:
        level = self.level
        DISK_LEVEL.set(level)
        if level == before:
            return
        free = {k: f"{v / 2**20:.1f} MiB" for k, v in self.free.items()}
        if level == OK:
            self.reason = None
            log.info("disk.resumed", state=self.state, free=free, note="evidence and events are written again")
            return
        self.reason = (f"disk guard: {self.state} (free: {', '.join(f'{k} {v}' for k, v in free.items()) or 'unknown'}; "
                       f"evidence needs {self.cfg.evidence_min_free_bytes / 2**20:.0f} MiB, events "
                       f"{self.cfg.events_min_free_bytes / 2**20:.0f} MiB; {why})")
        (log.error if level > before else log.warning)(
            "disk.guard", state=self.state, free=free, why=why,
            evidence_min_free_bytes=self.cfg.evidence_min_free_bytes, events_min_free_bytes=self.cfg.events_min_free_bytes,
            note="new evidence is refused" + (", new events are held in memory" if self.events_held else ""))

    def detail(self) -> dict:
        return {"state": self.state, "free_bytes": dict(self.free), "reason": self.reason}


class GuardedEvidenceStore:
    """An evidence store that writes nothing while the guard refuses evidence, and never raises for a
    failed write: `put` returns None and the event goes out without that item."""

    def __init__(self, inner: EvidenceStore, guard: DiskGuard) -> None:
        self.inner, self.guard = inner, guard
        self.root = getattr(inner, "root", None)

    def put(self, data: bytes, ext: str) -> StoredItem | None:
        if self.guard.evidence_refused:
            EVIDENCE_REFUSED.labels("disk_guard").inc()
            return None
        try:
            return self.inner.put(data, ext)
        except OSError as exc:  # ENOSPC, EDQUOT, EIO: the event still goes out
            EVIDENCE_REFUSED.labels("write_failed").inc()
            log.error("evidence.write_failed", bytes=len(data), ext=ext, error=repr(exc),
                      note="the event goes out without this item")
            self.guard.tripped("evidence", exc)
            return None

    def path_of(self, name: str) -> Path | None:
        return self.inner.path_of(name)
