"""The unit that flows from a source to the detectors."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class Frame:
    """One sampled, decoded picture of one camera.

    `media_time_s` counts from the start of the source (a file, or the moment an RTSP session
    opened); `wall_time` is the Unix time at which the frame was decoded. Replay runs its rules on
    media time, live on wall time: that is the only difference between them.
    """

    camera_id: str
    index: int
    media_time_s: float
    wall_time: float
    keyframe: bool
    image: np.ndarray  # BGR, HxWx3, uint8

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        return int(self.image.shape[0])
