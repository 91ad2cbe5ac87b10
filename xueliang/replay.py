"""`xueliang replay`: wires a recording from a `ServiceConfig` to the live camera path
(`bridge/camera_replay.py`), run on media time as fast as the machine allows."""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import TextIO

from bridge.camera_replay import ReplayStats, replay_camera
from detectors.camera_stage import CameraStage
from ingest.video import probe
from xueliang.config import ServiceConfig
from xueliang.wiring import Core, build_core


def replay(cfg: ServiceConfig, camera_id: str, out: TextIO, *, source: str | None = None,
           start: datetime | None = None, core: Core | None = None,
           on_frame: Callable[[float], bool] | None = None,
           on_pipeline: Callable[[CameraStage], None] | None = None) -> ReplayStats:
    """Write each event as one JSON line to `out`. Rules run on media time; `occurred_at` is the
    recording's start (`start`, else its metadata, else now) plus the media time.
    `on_frame(media_time_s)` is called after each frame; returning False stops the replay.
    `on_pipeline(stage)` is called once, before the first frame (the tuning bench shows its
    scene model while the replay runs)."""
    camera = cfg.camera(camera_id)
    url = source or camera.url
    start = start or probe(url).start_time or datetime.now(timezone.utc)
    core = core or build_core(cfg)
    stage, events = core.camera(cfg, camera_id)
    if on_pipeline is not None:
        on_pipeline(stage)
    return replay_camera(camera_id, url, camera.analysis_fps, cfg.video, stage, events, core.merge, start, out,
                         on_frame)
