"""`xueliang replay`: a recording through the live code path as fast as the machine allows."""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TextIO

from ingest.video import iter_frames, probe
from xueliang.config import ServiceConfig
from xueliang.pipeline import CameraPipeline, replay_time
from xueliang.wiring import Core, build_core


@dataclass
class ReplayStats:
    frames: int = 0
    events: int = 0
    seconds: float = 0.0

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0


def replay(cfg: ServiceConfig, camera_id: str, out: TextIO, *, source: str | None = None,
           start: datetime | None = None, core: Core | None = None,
           on_frame: Callable[[float], bool] | None = None,
           on_pipeline: Callable[[CameraPipeline], None] | None = None) -> ReplayStats:
    """Write each event as one JSON line to `out`. Rules run on media time; `occurred_at` is the
    recording's start (`start`, else its metadata, else now) plus the media time.
    `on_frame(media_time_s)` is called after each frame; returning False stops the replay.
    `on_pipeline(pipeline)` is called once, before the first frame (the tuning bench shows its
    scene model while the replay runs)."""
    camera = cfg.camera(camera_id)
    url = source or camera.url
    start = start or probe(url).start_time or datetime.now(timezone.utc)
    core = core or build_core(cfg)
    pipe = core.pipeline(cfg, camera_id)
    if on_pipeline is not None:
        on_pipeline(pipe)
    stats = ReplayStats()
    t0 = time.perf_counter()
    for frame in iter_frames(camera_id, url, camera.analysis_fps, realtime=False,
                             rtsp_transport=cfg.video.rtsp_transport, socket_timeout_s=cfg.video.socket_timeout_s,
                             decode=cfg.video.decode, ring=pipe.ring):
        at = replay_time(start, frame.media_time_s)
        changes = pipe.analyse(frame, pipe.detect(frame), frame.media_time_s, at)
        stats.frames += 1
        for event in pipe.events(frame, changes, at, frame.media_time_s):
            if core.merge is not None:
                event = core.merge.apply(event)
            out.write(event.model_dump_json() + "\n")
            out.flush()
            stats.events += 1
        if on_frame is not None and not on_frame(frame.media_time_s):
            break
    stats.seconds = time.perf_counter() - t0
    return stats
