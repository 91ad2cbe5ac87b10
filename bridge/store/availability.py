"""Camera availability (在线率): each camera's state changes kept in SQLite, and online rates per
camera, street and district over the last day and week computed from them.

A camera is online while its state is `online`; `connecting`, `stalled` and `offline` count
against it. Time while the service was not running is not observed: it counts neither way, and
`observed_s` says how much of the window was. A service that was killed (no `stopped` recorded)
is taken to have stopped at its last heartbeat, written every `heartbeat_s`. Rows carry their
writer (`owner`: the service, or a cluster worker's name), so a worker that starts closes only
the cameras it ran itself, never those another worker runs now.
"""
from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import structlog

from bridge.store.sqlite_files import connect_wal

log = structlog.get_logger(__name__)

ONLINE = "online"
UNOBSERVED = "stopped"  # the service was not watching
WINDOWS = {"day": 86_400.0, "week": 7 * 86_400.0}


@dataclass(frozen=True)
class Rate:
    online_s: float
    observed_s: float

    @property
    def rate(self) -> float | None:
        return round(self.online_s / self.observed_s, 4) if self.observed_s > 0 else None

    def __add__(self, other: Rate) -> Rate:
        return Rate(self.online_s + other.online_s, self.observed_s + other.observed_s)

    def as_dict(self) -> dict:
        return {"rate": self.rate, "online_s": round(self.online_s, 1), "observed_s": round(self.observed_s, 1)}


def rate_of(transitions: Iterable[tuple[float, str]], start: float, end: float) -> Rate:
    """Online and observed seconds within [start, end) from (time, state) changes, oldest first.
    The state before the first change is unknown (not observed)."""
    online = observed = 0.0
    prev_at, prev_state = None, None
    for at, state in [*transitions, (end, UNOBSERVED)]:
        if prev_at is not None and prev_state != UNOBSERVED:
            lo, hi = max(prev_at, start), min(at, end)
            if hi > lo:
                observed += hi - lo
                if prev_state == ONLINE:
                    online += hi - lo
        prev_at, prev_state = at, state
        if at >= end:
            break
    return Rate(online, observed)


class AvailabilityLog:
    """The state-change table; one writer (the service), reads from the API via threads."""

    def __init__(self, path: Path | str, *, heartbeat_s: float = 60.0, owner: str = "service") -> None:
        self.path, self.heartbeat_s, self.owner = Path(path), heartbeat_s, owner
        self._lock = threading.Lock()
        self._db = connect_wal(self.path, "availability log", check_same_thread=False)
        with self._db:
            self._db.execute("CREATE TABLE IF NOT EXISTS camera_states (camera_id TEXT NOT NULL, at REAL NOT NULL, "
                             "state TEXT NOT NULL, owner TEXT NOT NULL DEFAULT 'service')")
            self._db.execute("CREATE INDEX IF NOT EXISTS camera_states_by_camera ON camera_states (camera_id, at)")
            self._db.execute("CREATE TABLE IF NOT EXISTS availability_heartbeat (owner TEXT PRIMARY KEY, "
                             "at REAL NOT NULL)")
        self._last: dict[str, str] = {}

    def open(self, now: float) -> None:
        """Start of a run: cameras left in a watched state by a killed service stop at its last heartbeat."""
        with self._lock, self._db:
            row = self._db.execute("SELECT at FROM availability_heartbeat WHERE owner = ?", (self.owner,)).fetchone()
            last = {cid: (at, st, who) for cid, at, st, who in self._db.execute(
                "SELECT camera_id, MAX(at), state, owner FROM camera_states GROUP BY camera_id")}
            for cid, (at, state, who) in last.items():
                if state != UNOBSERVED and who == self.owner:
                    until = min(max(row[0] if row else at, at), now)
                    self._db.execute("INSERT INTO camera_states VALUES (?, ?, ?, ?)", (cid, until, UNOBSERVED, self.owner))
                    log.warning("availability.unclean_stop", camera=cid, stopped_at=until)
            self._beat(now)

    def record(self, camera_id: str, state: str, at: float) -> bool:
        """Keep a change of state; the same state again is not a change. True when kept."""
        return self.record_many([(camera_id, state, at)]) == 1

    def record_many(self, states: list[tuple[str, str, float]]) -> int:
        """(camera id, state, since) of many cameras in one transaction; returns the changes kept."""
        with self._lock:  # rows are read back in time order, so a late write lands in its place
            changes = [(cid, at, st, self.owner) for cid, st, at in states if self._last.get(cid) != st]
            if changes:
                with self._db:
                    self._db.executemany("INSERT INTO camera_states VALUES (?, ?, ?, ?)", changes)
                for cid, _at, st, _owner in changes:
                    self._last[cid] = st
        return len(changes)

    def heartbeat(self, now: float) -> None:
        with self._lock, self._db:
            self._beat(now)

    def _beat(self, now: float) -> None:
        self._db.execute("INSERT INTO availability_heartbeat VALUES (?, ?) "
                         "ON CONFLICT(owner) DO UPDATE SET at = excluded.at", (self.owner, now))

    def transitions(self, camera_id: str, start: float, end: float) -> list[tuple[float, str]]:
        """The changes that matter for [start, end): the last one before it, and those within."""
        with self._lock:
            before = self._db.execute("SELECT at, state FROM camera_states WHERE camera_id = ? AND at <= ? "
                                      "ORDER BY at DESC, rowid DESC LIMIT 1", (camera_id, start)).fetchall()
            within = self._db.execute("SELECT at, state FROM camera_states WHERE camera_id = ? AND at > ? AND at < ? "
                                      "ORDER BY at, rowid", (camera_id, start, end)).fetchall()
        return [*before, *within]

    def close(self) -> None:
        with self._lock:
            self._db.close()


@dataclass(frozen=True)
class Place:
    """Where a camera stands in the grid hierarchy (from its location); None where unknown."""

    street_code: str | None = None
    street: str | None = None
    district_code: str | None = None
    district: str | None = None


def report(log_: AvailabilityLog, cameras: list[tuple[str, str | None, Place]], now: float,
           hours: int = 24) -> dict:
    """Online rates per camera, street and district for each window, and each camera's hourly
    rates over the last `hours` (oldest first; null where nothing was observed) for the chart."""
    out_cams, streets, districts = [], {}, {}
    for cid, name, place in cameras:
        changes = log_.transitions(cid, now - WINDOWS["week"], now)
        rates = {w: rate_of(changes, now - span, now) for w, span in WINDOWS.items()}
        start = now - hours * 3600
        hourly = [rate_of(changes, start + h * 3600, start + (h + 1) * 3600).rate for h in range(hours)]
        out_cams.append({"id": cid, "name": name, "street": place.street, "street_code": place.street_code,
                         "district": place.district, "district_code": place.district_code,
                         **{w: r.as_dict() for w, r in rates.items()}, "hourly": hourly})
        for groups, code, label in ((streets, place.street_code, place.street),
                                    (districts, place.district_code, place.district)):
            g = groups.setdefault(code, {"code": code, "name": label, "cameras": 0,
                                         **{w: Rate(0.0, 0.0) for w in WINDOWS}})
            g["cameras"] += 1
            for w in WINDOWS:
                g[w] = g[w] + rates[w]

    def finish(groups: dict) -> list[dict]:
        return [{**g, **{w: g[w].as_dict() for w in WINDOWS}} for g in groups.values()]

    return {"at": now, "windows_s": WINDOWS, "hours": hours, "cameras": out_cams,
            "streets": finish(streets), "districts": finish(districts)}


class AvailabilityRecorder:
    """The service's side: polls the cameras' states each second and keeps every change."""

    def __init__(self, log_: AvailabilityLog, states: Callable[[], list[tuple[str, str, float]]],
                 clock: Callable[[], float] = time.time) -> None:
        """`states`: (camera id, state, since) of every running camera."""
        self.log, self.states, self.clock = log_, states, clock
        self._stopped = False

    def poll(self) -> None:
        self.log.record_many(self.states())

    async def run(self, period_s: float = 1.0) -> None:
        """Off the event loop: SQLite may wait for another writer of the same file (cluster workers)."""
        await asyncio.to_thread(self.log.open, self.clock())
        beat = self.clock()
        try:
            while True:
                states = self.states()
                await asyncio.to_thread(self.log.record_many, states)
                if self.clock() - beat >= self.log.heartbeat_s:
                    beat = self.clock()
                    await asyncio.to_thread(self.log.heartbeat, beat)
                await asyncio.sleep(period_s)
        finally:
            self.stop()

    def stop(self) -> None:
        """The cameras are no longer watched from now; once, however often called."""
        if self._stopped:
            return
        self._stopped = True
        now = self.clock()
        self.log.record_many([(cid, UNOBSERVED, now) for cid, _state, _since in self.states()])
        self.log.heartbeat(now)
