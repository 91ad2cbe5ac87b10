"""Retention: each store keeps what the config says (age and total size), never what is still owed.

Run by `Retention.run_once()` in the background every `retention.interval_s`:

* outbox: events delivered to Kafka (or kept back by a closed work order) older than `max_age_s`,
  then the oldest of them while the file's used pages exceed `max_bytes`. Never an undelivered or
  parked event, never an event of an open incident (not `cleared` yet, or with an event not
  delivered yet: open as far as the platform knows). See bridge.store.outbox_retention.
* evidence: files older than `max_age_s`, then the oldest while the directory holds more than
  `max_bytes`; never a file named by an undelivered event or by an event of an open incident,
  and (for size) never one younger than `min_file_age_s` (its event may not be stored yet).
* dead letters, audit log, console camera versions: rows older than `max_age_s`, then the oldest
  while over `max_bytes`; each camera's newest config version is always kept.
"""
from __future__ import annotations

import asyncio
import os
import re
import time
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path

import structlog

from bridge.bridge_metrics import RETENTION_DELETED
from bridge.store.outbox import EventStore, StoreClosedError
from bridge.reliability_config import RetentionConfig, StoreRetention
from bridge.store.outbox_retention import CHUNK, OutboxRetention, used_bytes
from bridge.store.sqlite_files import connect_wal

log = structlog.get_logger(__name__)

_EVIDENCE_NAME = re.compile(r"[0-9a-f]{32}\.[a-z0-9]{2,4}")


def prune_evidence(root: Path, keep: StoreRetention, protected: set[str], min_file_age_s: float,
                   now: float) -> dict[str, int]:
    out = {"age": 0, "size": 0}
    if not root.is_dir():
        return out
    files = []
    for entry in os.scandir(root):
        if not entry.is_file(follow_symlinks=False):
            continue
        st = entry.stat(follow_symlinks=False)
        if entry.name.endswith(".part"):  # a write that died half-way
            if st.st_mtime < now - 3600:
                _remove(Path(entry.path), out, "age")
            continue
        files.append((st.st_mtime, st.st_size, entry.name))
    files.sort()
    kept = []
    for mtime, size, name in files:
        if keep.max_age_s is not None and mtime < now - keep.max_age_s and name not in protected:
            _remove(root / name, out, "age")
        else:
            kept.append((mtime, size, name))
    if keep.max_bytes is not None:
        total = sum(size for _, size, _ in kept)
        for mtime, size, name in kept:
            if total <= keep.max_bytes:
                break
            if name in protected or mtime > now - min_file_age_s:
                continue
            if _remove(root / name, out, "size"):
                total -= size
    return out


def _remove(path: Path, out: dict[str, int], reason: str) -> bool:
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    out[reason] += 1
    return True


def prune_table(path: Path, what: str, table: str, at: str, keep: StoreRetention, now: float, *,
                iso: bool = False, size_expr: str | None = None, spare: str = "") -> dict[str, int]:
    """Rows of `table` older than the age (by column `at`: Unix time, or ISO 8601 UTC with `iso`), then the
    oldest while over the size (`size_expr` summed over the rows; default the file's used pages).
    `spare` is an SQL condition of rows never removed."""
    out = {"age": 0, "size": 0}
    if not path.exists():
        return out
    guard = f" AND NOT ({spare})" if spare else ""
    with closing(connect_wal(path, what)) as db:
        if keep.max_age_s is not None:
            cutoff: float | str = now - keep.max_age_s
            if iso:
                cutoff = datetime.fromtimestamp(cutoff, timezone.utc).isoformat(timespec="milliseconds")
            with db:
                out["age"] = db.execute(f"DELETE FROM {table} WHERE {at} < ?{guard}", (cutoff,)).rowcount
        if keep.max_bytes is not None:
            def size() -> int:
                return int(db.execute(f"SELECT coalesce(sum({size_expr}), 0) FROM {table}").fetchone()[0]) \
                    if size_expr else used_bytes(db)
            while size() > keep.max_bytes:
                with db:
                    n = db.execute(f"DELETE FROM {table} WHERE rowid IN (SELECT rowid FROM {table} "
                                   f"WHERE 1{guard} ORDER BY {at} LIMIT {CHUNK // 10})").rowcount
                out["size"] += n
                if n == 0:
                    break
    return out


class Retention:
    def __init__(self, cfg: RetentionConfig, store: EventStore, evidence_dir: Path, deadletters: Path,
                 console_db: Path) -> None:
        self.cfg, self.store = cfg, store
        self.outbox = OutboxRetention(store.path)
        self.evidence_dir, self.deadletters, self.console_db = evidence_dir, deadletters, console_db
        self.wake = asyncio.Event()  # set by the disk guard: run now
        self.runs = 0

    async def run_once(self, now: float | None = None) -> dict[str, dict[str, int]]:
        cfg, now = self.cfg, time.time() if now is None else now
        t0 = time.monotonic()
        done = {"outbox": await asyncio.to_thread(self.outbox.prune, cfg.outbox.max_age_s, cfg.outbox.max_bytes, now)}
        if done["outbox"].pop("over_size", 0):
            log.warning("retention.outbox_over_size", max_bytes=cfg.outbox.max_bytes,
                        note="everything left is undelivered, parked or of an open incident")
        protected = await asyncio.to_thread(self.outbox.protected_evidence, _EVIDENCE_NAME)
        done["evidence"] = await asyncio.to_thread(prune_evidence, self.evidence_dir, cfg.evidence, protected,
                                                   cfg.min_file_age_s, now)
        done["deadletters"] = await asyncio.to_thread(
            prune_table, self.deadletters, "dead-letter store", "deadletters", "received_at", cfg.deadletters, now)
        done["audit"] = await asyncio.to_thread(
            prune_table, self.console_db, "console database", "audit", "at", cfg.audit, now, iso=True,
            size_expr="length(detail) + length(actor) + length(action) + coalesce(length(target), 0) + 64")
        done["console"] = await asyncio.to_thread(
            prune_table, self.console_db, "console database", "camera_versions", "at", cfg.console, now, iso=True,
            size_expr="length(config) + 64",
            spare="version = (SELECT max(version) FROM camera_versions v WHERE v.camera_id = camera_versions.camera_id)")
        for store, counts in done.items():
            for reason, n in counts.items():
                if n:
                    RETENTION_DELETED.labels(store, reason).inc(n)
        self.runs += 1
        if any(n for counts in done.values() for n in counts.values()):
            log.info("retention.done", removed=done, seconds=round(time.monotonic() - t0, 2))
        return done

    async def run(self) -> None:
        """Every `interval_s` (and when woken by the disk guard) until cancelled; a failed run is logged."""
        while True:
            try:
                await self.run_once()
            except StoreClosedError:
                raise
            except Exception:  # a bug or a locked file must not stop the service: logged, tried next time
                log.exception("retention.failed", note="tried again at the next interval")
            self.wake.clear()
            try:
                await asyncio.wait_for(self.wake.wait(), self.cfg.interval_s)
            except asyncio.TimeoutError:
                pass
