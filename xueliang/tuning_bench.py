"""The tuning bench behind `/tuning/...`: validate an edited camera config against the config
models, backtest it on a recorded clip through the replay code path, save it as a new version
and apply it to that camera only, roll back.

Backtests run one at a time in their own thread with their own detector instance, so they never
share an inference request with the live cameras; a newer backtest of the same camera waits for
the older one to finish (409) rather than queue without bound.
"""
from __future__ import annotations

import asyncio
import json
import re
import threading
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import av
import cv2
import structlog
from pydantic import ValidationError

from bridge.store.audit import ConfigVersion, ConsoleDb
from bridge.http.auth import Principal
from bridge.events.catalogue import Catalogue
from bridge.http.console.tuning_routes import (Backtest, CameraBench, CameraTuning, Clip, GateView, Incident, Problems, SceneRegionView,
                                   Version)
from bridge.http.console.review import ReviewBacktest
from detectors.detector_config import RULE_TYPES
from detectors.change_gate import ChangeGate
from detectors.scene_model import SceneModel
from ingest.video import is_network_url, open_container, probe
from xueliang.config import CameraConfig, ServiceConfig, _cross_check
from detectors.camera_stage import CameraStage
from xueliang import review_backtest
from xueliang.replay import replay
from xueliang.wiring import Core, build_core

log = structlog.get_logger(__name__)

_EDITABLE = ("zones", "rules", "masks", "objects")
_PATH = re.compile(r"\.?([A-Za-z_][A-Za-z0-9_-]*)|\[(\d+)\]")
_KEEP_JOBS = 20
REPLAY_START = datetime(2000, 1, 1, tzinfo=timezone.utc)  # backtests report media time; the date is irrelevant


def tuning_of(cam: CameraConfig) -> CameraTuning:
    return CameraTuning.model_validate({k: getattr(cam, k) for k in _EDITABLE}, from_attributes=True)


def _tuple_path(path: str) -> tuple:
    return tuple(int(i) if i else name for name, i in _PATH.findall(path))


def candidate(cfg: ServiceConfig, camera_id: str, tuning: CameraTuning) -> CameraConfig:
    """The camera as it would run with `tuning`; Problems (field path, message) if it cannot."""
    index = [c.id for c in cfg.cameras].index(camera_id)
    doc = cfg.cameras[index].model_dump() | tuning.model_dump(include=set(_EDITABLE))
    try:
        cam = CameraConfig.model_validate(doc)
    except ValidationError as exc:
        raise Problems([(tuple(p for p in e["loc"] if p not in RULE_TYPES), e["msg"].removeprefix("Value error, "))
                        for e in exc.errors()]) from None
    trial = cfg.model_copy(update={"cameras": [*cfg.cameras[:index], cam, *cfg.cameras[index + 1:]]})
    prefix = f"cameras[{index}]."
    problems = [(_tuple_path(loc.removeprefix(prefix)), msg) for loc, msg in _cross_check(trial)
                if loc.startswith(prefix)]
    if problems:
        raise Problems(problems)
    return cam


def apply_saved(cfg: ServiceConfig, db: ConsoleDb) -> dict[str, int]:
    """At start-up: each camera runs its latest saved version (if it still validates)."""
    running: dict[str, int] = {}
    for i, cam in enumerate(list(cfg.cameras)):
        saved = db.latest(cam.id)
        if saved is None:
            continue
        try:
            cfg.cameras[i] = candidate(cfg, cam.id, CameraTuning.model_validate(saved.config))
            running[cam.id] = saved.version
            log.info("tuning.saved_version_applied", camera=cam.id, version=saved.version, author=saved.author)
        except (Problems, ValidationError) as exc:
            log.error("tuning.saved_version_invalid", camera=cam.id, version=saved.version, error=str(exc))
    return running


@dataclass
class Job:
    id: str
    camera_id: str
    clip: Clip
    config_hash: str
    state: str = "queued"
    progress_s: float = 0.0
    frames: int = 0
    incidents: dict[str, Incident] = field(default_factory=dict)
    error: str | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    scene: SceneModel | None = None  # the replay's scene model, when a rule uses one
    gate: ChangeGate | None = None  # the replay's change gate, when the camera has it on

    def view(self) -> Backtest:
        regions = None
        if self.scene is not None:
            regions = [SceneRegionView(id=r.id, box=[round(v, 4) for v in r.box], area=round(r.area, 5),
                                       appeared_s=round(r.appeared_at, 2), occluded=r.occluded)
                       for r in self.scene.regions]
        return Backtest(id=self.id, camera_id=self.camera_id, clip=self.clip, state=self.state,
                        progress_s=round(self.progress_s, 2), frames=self.frames,
                        incidents=list(self.incidents.values()), error=self.error, config_hash=self.config_hash,
                        scene_regions=regions, gate=gate_view(self.gate))

    def on_pipeline(self, pipe: CameraStage) -> None:
        self.scene = pipe.scene_model
        self.gate = pipe.gated.gate if pipe.gated is not None else None

    # replay() writes one JSON line per event: the job reads them as they come
    def write(self, text: str) -> int:
        for line in text.splitlines():
            if line.strip():
                self._event(json.loads(line))
        return len(text)

    def flush(self) -> None:
        pass

    def _event(self, ev: dict) -> None:
        t = ev["source"]["media_time_s"]
        if ev["status"] == "opened":
            self.incidents[ev["incident_id"]] = Incident(
                incident_id=ev["incident_id"], rule=ev["detector"]["rule"], zone=ev["source"]["zone"], opened_s=t,
                cleared_s=None, confidence=ev["confidence"], thumbnail=ev["evidence"].get("crop"),
                snapshot=ev["evidence"].get("snapshot"))
        elif ev["status"] == "cleared" and ev["incident_id"] in self.incidents:
            inc = self.incidents[ev["incident_id"]]
            self.incidents[ev["incident_id"]] = inc.model_copy(update={"cleared_s": t})


class Bench:
    """Implements `bridge.http.console.tuning_routes.Tuning` over the live `ServiceConfig`."""

    def __init__(self, cfg: ServiceConfig, db: ConsoleDb, apply: Callable[[CameraConfig], Awaitable[None]],
                 running: dict[str, int] | None = None) -> None:
        self.cfg = cfg
        self.db = db
        self.apply = apply
        self.running = dict(running or {})
        self.categories = sorted(Catalogue.load(cfg.catalogue).by_code)
        self._jobs: dict[str, Job] = {}
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="backtest")
        self._core: Core | None = None
        self._durations: dict[str, float | None] = {}
        self._paths: dict[str, list[str]] = {}
        self._save_lock = asyncio.Lock()
        self._reviews: dict[str, review_backtest.ReviewJob] = {}
        self._review_cache: dict[tuple[str, str, str], bool] = {}  # (clip, config hash, category) -> reported

    def close(self) -> None:
        for job in [*self._jobs.values(), *self._reviews.values()]:
            job.cancel.set()
        self._pool.shutdown(wait=True, cancel_futures=True)

    # ------------------------------------------------------------------ reading

    def clips(self, cam: CameraConfig) -> list[Clip]:
        paths = ([cam.url] if not is_network_url(cam.url) else []) + [r for r in cam.recordings if r != cam.url]
        out = []
        for i, p in enumerate(paths):
            if p not in self._durations:
                try:
                    self._durations[p] = probe(p).duration_s
                except (av.error.FFmpegError, OSError) as exc:
                    log.warning("tuning.clip_unreadable", camera=cam.id, clip=Path(p).name, error=str(exc))
                    self._durations[p] = None
            out.append(Clip(index=i, name=Path(p).name, duration_s=self._durations[p]))
        self._paths[cam.id] = paths
        return out

    def _clip(self, cam: CameraConfig, index: int) -> tuple[Clip, str]:
        clips = self.clips(cam)
        if not 0 <= index < len(clips):
            raise IndexError(f"camera {cam.id!r} has {len(clips)} recorded clip(s); no clip {index}")
        return clips[index], self._paths[cam.id][index]

    def bench(self, camera_id: str) -> CameraBench:
        cam = self.cfg.camera(camera_id)
        return CameraBench(camera_id=cam.id, name=cam.name, config=tuning_of(cam),
                           config_hash=cam.detection_hash(self.cfg.model, self.cfg.tracker), clips=self.clips(cam),
                           categories=self.categories, rule_types=sorted(RULE_TYPES),
                           version=self.running.get(camera_id))

    def frame_jpeg(self, camera_id: str, clip: int, t: float) -> bytes:
        _, path = self._clip(self.cfg.camera(camera_id), clip)
        with open_container(path) as container:
            stream = container.streams.video[0]
            if t > 0:
                container.seek(int(t / stream.time_base), stream=stream, backward=True)
            image = None
            for vf in container.decode(stream):
                image = vf.to_ndarray(format="bgr24")
                if vf.time is None or vf.time >= t - 0.05:
                    break
        if image is None:
            raise IndexError(f"clip {clip} has no frame at {t} s")
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])
        if not ok:
            raise RuntimeError("JPEG encoding failed")
        return buf.tobytes()

    def check(self, camera_id: str, config: CameraTuning) -> str:
        return candidate(self.cfg, camera_id, config).detection_hash(self.cfg.model, self.cfg.tracker)

    def versions(self, camera_id: str) -> list[Version]:
        return [_version(v) for v in self.db.versions(camera_id)]

    # ------------------------------------------------------------------ backtest

    def start_backtest(self, camera_id: str, config: CameraTuning, clip: int, who: Principal) -> Backtest:
        cam = candidate(self.cfg, camera_id, config)
        clip_info, path = self._clip(cam, clip)
        busy = [j for j in self._jobs.values() if j.camera_id == camera_id and j.state in ("queued", "running")]
        if busy:
            raise RuntimeError(f"backtest {busy[0].id} of camera {camera_id!r} is still {busy[0].state}; wait for it")
        job = Job(uuid.uuid4().hex[:12], camera_id, clip_info, cam.detection_hash(self.cfg.model, self.cfg.tracker))
        self._jobs[job.id] = job
        finished = [k for k, j in self._jobs.items() if j.state not in ("queued", "running")]
        for k in finished[:-_KEEP_JOBS]:  # results are for looking at now, not an archive
            del self._jobs[k]
        trial = self.cfg.model_copy(update={"cameras": [cam if c.id == camera_id else c for c in self.cfg.cameras]})
        self._pool.submit(self._run, job, trial, path)
        log.info("tuning.backtest_started", camera=camera_id, job=job.id, clip=clip_info.name, by=who.name)
        return job.view()

    def _run(self, job: Job, trial: ServiceConfig, path: str) -> None:
        if job.cancel.is_set():
            job.state = "cancelled"
            return
        job.state = "running"

        def on_frame(t: float) -> bool:
            job.progress_s, job.frames = t, job.frames + 1
            return not job.cancel.is_set()

        try:
            if self._core is None:
                self._core = build_core(self.cfg)
            replay(trial, job.camera_id, job, source=path, start=REPLAY_START, core=self._core, on_frame=on_frame,
                   on_pipeline=job.on_pipeline)
            job.state = "cancelled" if job.cancel.is_set() else "done"
        except Exception as exc:  # reported to the operator through the job; the service goes on
            log.exception("tuning.backtest_failed", job=job.id, camera=job.camera_id)
            job.state, job.error = "failed", f"{type(exc).__name__}: {exc}"
        log.info("tuning.backtest_finished", job=job.id, state=job.state, frames=job.frames,
                 incidents=len(job.incidents))

    def start_review_backtest(self, camera_id: str, config: CameraTuning, who: Principal) -> ReviewBacktest:
        """The changed config against the camera's reviewed incidents (`xueliang.review_backtest`)."""
        return review_backtest.start(self, camera_id, config, who, self._reviews).view()

    def review_backtest(self, camera_id: str, job_id: str) -> ReviewBacktest | None:
        job = self._reviews.get(job_id)
        return job.view() if job is not None and job.camera_id == camera_id else None

    def backtest(self, camera_id: str, job_id: str) -> Backtest | None:
        job = self._jobs.get(job_id)
        return job.view() if job is not None and job.camera_id == camera_id else None

    def scene_jpeg(self, camera_id: str, job_id: str) -> bytes | None:
        """The backtest's reference scene with its static regions outlined, as it stands now."""
        return self._jpeg(camera_id, job_id, "scene")

    def gate_jpeg(self, camera_id: str, job_id: str) -> bytes | None:
        """The backtest's change gate now: what the model last saw, the changed parts, the region run."""
        return self._jpeg(camera_id, job_id, "gate")

    def _jpeg(self, camera_id: str, job_id: str, what: str) -> bytes | None:
        job = self._jobs.get(job_id)
        source = getattr(job, what, None) if job is not None and job.camera_id == camera_id else None
        if source is None:
            return None
        image = source.overlay((640, 360))
        if image is None:
            return None
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])
        if not ok:
            raise RuntimeError("JPEG encoding failed")
        return buf.tobytes()

    # ------------------------------------------------------------------ save, roll back

    async def save(self, camera_id: str, config: CameraTuning, who: Principal, comment: str | None,
                   action: str = "camera.save") -> Version:
        async with self._save_lock:
            cam = candidate(self.cfg, camera_id, config)
            before = tuning_of(self.cfg.camera(camera_id))
            saved = await asyncio.to_thread(self.db.save_version, camera_id, config.model_dump(mode="json"), who.name,
                                            comment, before.model_dump(mode="json"))
            await self.apply(cam)
            self.running[camera_id] = saved.version
            await asyncio.to_thread(self.db.record, who.name, action, camera_id,
                                    {"version": saved.version, "comment": comment,
                                     "config_hash": cam.detection_hash(self.cfg.model, self.cfg.tracker)}, who.role)
            log.info("tuning.saved", camera=camera_id, version=saved.version, by=who.name)
            return _version(saved)

    async def rollback(self, camera_id: str, version: int, who: Principal) -> Version:
        old = await asyncio.to_thread(self.db.version, camera_id, version)
        if old is None:
            raise KeyError(f"version: camera {camera_id!r} has no saved version {version}")
        return await self.save(camera_id, CameraTuning.model_validate(old.config), who,
                               f"roll back to version {version}", action="camera.rollback")


def _version(v: ConfigVersion) -> Version:
    return Version(version=v.version, at=v.at, author=v.author, comment=v.comment,
                   config=CameraTuning.model_validate(v.config))


def gate_view(gate: ChangeGate | None) -> GateView | None:
    """The change gate's last decision and its counts, for the bench's debug view."""
    if gate is None or gate.last_plan is None:
        return None
    p, st = gate.last_plan, gate.stats
    region = None
    if p.crop is not None:
        h, w = p.shape
        region = [round(p.crop[0] / w, 4), round(p.crop[1] / h, 4), round(p.crop[2] / w, 4), round(p.crop[3] / h, 4)]
    return GateView(decision=p.kind, reason=p.reason, changed=[[round(v, 4) for v in b] for b in p.changed],
                    changed_fraction=round(p.changed_fraction, 4), region=region, frames_full=st.full,
                    frames_region=st.regions, frames_gated=st.skipped)
