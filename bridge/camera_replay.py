"""A recording through the live camera path as fast as the machine allows, on media time.

The same stage and event building as a live camera (`bridge/cameras.py`), without the cross-camera
batcher and the outbox: each frame goes through `CameraStage.on_frame_sync`, its changes through
`CameraEvents.events`, the merge stage, and out as one JSON line. The rules' clock is the
recording's media time; `occurred_at` is the recording's start plus the media time.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TextIO

from bridge.events.camera_events import CameraEvents
from bridge.merging.rewrite import MergeStage
from detectors.camera_stage import CameraStage
from ingest.stream_config import VideoInputConfig
from ingest.video import iter_frames


@dataclass
class ReplayStats:
    frames: int = 0
    events: int = 0
    seconds: float = 0.0

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0


def replay_time(start: datetime, media_time_s: float) -> datetime:
    return start + timedelta(seconds=media_time_s)


def replay_camera(camera_id: str, url: str, analysis_fps: float, video: VideoInputConfig, stage: CameraStage,
                  events: CameraEvents, merge: MergeStage | None, start: datetime, out: TextIO,
                  on_frame: Callable[[float], bool] | None = None) -> ReplayStats:
    """Write each event as one JSON line to `out`. `on_frame(media_time_s)` is called after each
    frame; returning False stops the replay."""
    stats = ReplayStats()
    t0 = time.perf_counter()
    for frame in iter_frames(camera_id, url, analysis_fps, realtime=False,
                             rtsp_transport=video.rtsp_transport, socket_timeout_s=video.socket_timeout_s,
                             decode=video.decode, ring=events.ring):
        at = replay_time(start, frame.media_time_s)
        changes = stage.on_frame_sync(frame, frame.media_time_s, at)
        stats.frames += 1
        for event in events.events(frame, changes, at, frame.media_time_s):
            if merge is not None:
                event = merge.apply(event)
            out.write(event.model_dump_json() + "\n")
            out.flush()
            stats.events += 1
        if on_frame is not None and not on_frame(frame.media_time_s):
            break
    stats.seconds = time.perf_counter() - t0
    return stats
