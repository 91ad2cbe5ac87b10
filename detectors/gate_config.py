"""Config of the change gate (`cameras[].gate`): the model runs only where the picture changed."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ChangeGateConfig(BaseModel):
    """Before inference, each analysed frame is compared with what the model last saw (brightness
    normalised, downscaled). Nothing changed: the model is not run and the last detections carry
    on; a part changed: the model runs on that part only; much changed, or `refresh_s` passed: the
    whole frame. See `detectors.change_gate`."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="Gate this camera's model by change. Off: the model sees every analysed "
                          "frame whole (for a camera whose model must see every frame).")
    width: int = Field(160, ge=32, le=640, description="Width the change comparison runs at, pixels (height follows "
                       "the aspect); smaller is cheaper and ignores finer change.")
    min_contrast: float = Field(
        18.0, gt=0, le=255,
        description="Smallest grey-level difference (after scaling the frame's brightness to what the model last "
        "saw) that counts as change.")
    noise_k: float = Field(4.0, gt=0, description="Change must also exceed this many times the frame's own noise "
                           "(robust estimate: rain, sensor noise, compression).")
    min_area: float = Field(0.0005, gt=0, lt=1, description="Smallest changed blob that counts, fraction of the frame.")
    margin: float = Field(0.06, ge=0, le=0.5, description="Context added around a changed part before the model runs "
                          "on it, fraction of the frame's longer side on each side.")
    region_step: int = Field(160, ge=32, multiple_of=32, description="A region runs at the frame's own scale (as the "
                             "whole frame would: same detections), its model input a multiple of this many pixels per "
                             "side; fewer sizes, fewer compiled variants of the model.")
    full_frame_area: float = Field(0.5, gt=0, le=1, description="When a region's model input would be more than this "
                                   "fraction of the whole frame's, the whole frame is run instead.")
    refresh_s: float = Field(30.0, gt=0, description="The whole frame is run at least this often, seconds: a slow "
                             "change (a growing pile, dusk) and a detection that was wrong once are corrected.")
