"""Backtest a changed camera config against the camera's reviewed incidents (the operators' labels).

Each reviewed incident's evidence clip (about 10 s before its opening to 5 s after) is replayed
twice through the replay code path: with the running config and with the changed one. An incident
counts as reported when the replay opens an incident of the same category. Then:

- a false alarm the running config reports and the changed one does not is **removed**;
- a confirmed incident the running config reports and the changed one does not is **lost**;
- an incident without a clip (clips off, or removed by retention) is **untestable**.

"of your 40 reviewed events, 12 false alarms: this change removes 9 and loses 1 real one".

It runs on the tuning bench (bridge/http/console/tuning_bench.py), with the replay and the config
steps the composition root handed the bench.
"""
from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from bridge.http.auth import Principal
from bridge.http.console.review import ReviewBacktest, ReviewCase
from bridge.http.console.tuning_routes import CameraTuning

log = structlog.get_logger(__name__)

# The latest review of each incident of the camera, and the first clip any event of it carries.
_SQL = """
SELECT r.incident_id, r.payload,
       (SELECT json_extract(c.payload, '$.evidence.clip') FROM events c WHERE c.incident_id = r.incident_id
          AND json_extract(c.payload, '$.evidence.clip') IS NOT NULL ORDER BY c.seq LIMIT 1)
FROM events r JOIN (SELECT incident_id, max(seq) AS last FROM events WHERE status = 'reviewed' AND camera_id = ?
                    GROUP BY incident_id) m ON r.seq = m.last
ORDER BY r.seq
"""


@dataclass
class Case:
    incident_id: str
    decision: str
    reason: str | None
    category: str
    clip: str | None
    now: bool | None = None
    changed: bool | None = None


@dataclass
class ReviewJob:
    id: str
    camera_id: str
    cases: list[Case]
    state: str = "queued"
    error: str | None = None
    cancel: threading.Event = field(default_factory=threading.Event)

    def view(self) -> ReviewBacktest:
        fa = [c for c in self.cases if c.decision == "false_alarm"]
        testable = [c for c in self.cases if c.clip is not None]
        removed = sum(1 for c in fa if c.now and c.changed is False)
        lost = sum(1 for c in self.cases if c.decision == "confirmed" and c.now and c.changed is False)
        summary = (f"of your {len(self.cases)} reviewed events, {len(fa)} false alarm{'s' * (len(fa) != 1)}: "
                   f"this change removes {removed} and loses {lost} real one{'s' * (lost != 1)}")
        if len(testable) < len(self.cases):
            summary += f" ({len(self.cases) - len(testable)} without a clip could not be replayed)"
        return ReviewBacktest(id=self.id, camera_id=self.camera_id, state=self.state, reviewed=len(self.cases),
                              false_alarms=len(fa), removed=removed, lost=lost,
                              untestable=len(self.cases) - len(testable), summary=summary, error=self.error,
                              cases=[ReviewCase(incident_id=c.incident_id, decision=c.decision, reason=c.reason,
                                                clip=c.clip, now=c.now, changed=c.changed) for c in self.cases])


def reviewed_cases(outbox: Path, camera_id: str) -> list[Case]:
    conn = sqlite3.connect(f"{Path(outbox).resolve().as_uri()}?mode=ro", uri=True, timeout=10)
    try:
        rows = conn.execute(_SQL, (camera_id,)).fetchall()
    finally:
        conn.close()
    out = []
    for incident_id, payload, clip in rows:
        ev = json.loads(payload)
        review = ev.get("review") or {}
        out.append(Case(incident_id, review.get("decision", "confirmed"), review.get("reason"),
                        ev["category"]["code"], clip))
    return out


class _Opened:
    """A replay's output sink: the categories of the incidents it opened."""

    def __init__(self) -> None:
        self.categories: set[str] = set()

    def write(self, text: str) -> int:
        for line in text.splitlines():
            if line.strip():
                ev = json.loads(line)
                if ev["status"] == "opened":
                    self.categories.add(ev["category"]["code"])
        return len(text)

    def flush(self) -> None:
        pass


def _without_clips(cfg: Any, cam: Any) -> Any:
    cam = cam.model_copy(update={"clip": cam.clip.model_copy(update={"enabled": False})})
    return cfg.model_copy(update={"cameras": [cam if c.id == cam.id else c for c in cfg.cameras]})


def run_review_backtest(job: ReviewJob, running: Any, changed: Any, core, clip_path, replay: Callable[..., Any],
                        cache: dict[tuple[str, str, str], bool] | None = None) -> None:
    """Blocking: replays (`replay`, the root's) every case's clip with both service configs; fills `now`
    and `changed`. `cache`: results
    by (clip, config hash, category), so a config already replayed on a clip (the running one, at the
    next try of an edit) is not replayed again."""
    cache = {} if cache is None else cache
    if job.cancel.is_set():
        job.state = "cancelled"
        return
    job.state = "running"
    configs = [_without_clips(cfg, cfg.camera(job.camera_id)) for cfg in (running, changed)]
    try:
        for case in job.cases:
            path = clip_path(case.clip) if case.clip else None
            if path is None:
                case.clip = None
                continue
            for attr, cfg in zip(("now", "changed"), configs):
                key = (case.clip, cfg.camera(job.camera_id).detection_hash(cfg.model, cfg.tracker), case.category)
                if key not in cache:
                    sink = _Opened()
                    replay(cfg, job.camera_id, sink, source=str(path), core=core,
                           on_frame=lambda t: not job.cancel.is_set())
                    if job.cancel.is_set():
                        break
                    cache[key] = case.category in sink.categories
                setattr(case, attr, cache[key])
            if job.cancel.is_set():
                job.state = "cancelled"
                return
        job.state = "done"
    except Exception as exc:  # reported to the operator through the job; the service goes on
        log.exception("tuning.review_backtest_failed", job=job.id, camera=job.camera_id)
        job.state, job.error = "failed", f"{type(exc).__name__}: {exc}"
    log.info("tuning.review_backtest_finished", job=job.id, state=job.state, summary=job.view().summary)


def start(bench, camera_id: str, config: CameraTuning, who: Principal, jobs: dict[str, ReviewJob]) -> ReviewJob:
    """Start one on the bench's backtest thread (one backtest at a time); KeyError: no such camera."""
    bench.cfg.camera(camera_id)  # KeyError: no such camera
    cam = bench.steps.candidate(bench.cfg, camera_id, config)
    busy = [j for j in jobs.values() if j.camera_id == camera_id and j.state in ("queued", "running")]
    if busy:
        raise RuntimeError(f"review backtest {busy[0].id} of camera {camera_id!r} is still {busy[0].state}; wait for it")
    job = ReviewJob(uuid.uuid4().hex[:12], camera_id, reviewed_cases(bench.cfg.outbox_path, camera_id))
    jobs[job.id] = job
    changed = bench.cfg.model_copy(update={"cameras": [cam if c.id == camera_id else c for c in bench.cfg.cameras]})
    running = bench.cfg.model_copy(deep=True)

    def run() -> None:
        if bench._core is None:
            bench._core = bench.steps.build_core(bench.cfg)
        run_review_backtest(job, running, changed, bench._core,
                            lambda url: bench._core.evidence.path_of(url.rsplit("/", 1)[-1]), bench.steps.replay,
                            bench._review_cache)

    bench._pool.submit(run)
    log.info("tuning.review_backtest_started", camera=camera_id, job=job.id, cases=len(job.cases), by=who.name)
    return job
