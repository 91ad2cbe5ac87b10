"""Config of the scene model (`cameras[].scene`): the reference scene behind left objects and piles."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class SceneModelConfig(BaseModel):
    """The camera's scene model: what the empty scene looks like, for objects of any kind left in it.

    Used by `dumping` (with `scene_regions` on) and `pile` rules; a camera with neither runs none.
    All persistence is in seconds, whatever the analysis rate.
    """

    model_config = ConfigDict(extra="forbid")

    width: int = Field(320, ge=64, le=1280, description="Width the scene is modelled at, pixels (height follows the aspect).")
    short_tau_s: float = Field(
        6.0, gt=0,
        description="Time constant of the short-term background, seconds: an object that stops becomes part of it "
        "after about this long, and is then a static new region.",
    )
    long_tau_s: float = Field(
        600.0, gt=0,
        description="Time constant with which the reference scene follows slow change (dusk, clouds) where nothing "
        "new stands, seconds. Never learnt under a region.",
    )
    min_contrast: float = Field(
        20.0, gt=0, le=255,
        description="Smallest grey-level difference (after scaling each frame's median to 128) that counts as change.",
    )
    noise_k: float = Field(
        4.0, gt=0, description="Change must also exceed this many times the frame's own noise (robust estimate: rain, "
        "sensor noise at night, compression).",
    )
    min_area: float = Field(0.0004, gt=0, lt=1, description="Smallest region the model reports, fraction of the frame.")
    confirm_s: float = Field(
        2.0, ge=0, description="A candidate region must stand still this long before it is judged (added, removed, light).",
    )
    occlusion_s: float = Field(
        120.0, gt=0,
        description="How long a region hidden by something in front of it (a bus, a crowd) is held with its id, seconds.",
    )
    forget_after_s: float = Field(
        7200.0, gt=0,
        description="A region standing this long becomes part of the reference scene (its incident clears), seconds.",
    )
    max_shift: float = Field(
        0.03, ge=0, le=0.2, description="Largest camera shake compensated, fraction of the width (0: none).",
    )
    max_growth: float = Field(
        3.0, gt=1, description="A region whose blob becomes more than this many times its size grows with it only if "
        "it still looks as before (a pile that grew); otherwise something stopped in front of it and it is held.",
    )
    light_ncc: float = Field(
        0.8, gt=0, le=1,
        description="A region whose inside still correlates this much with the reference's texture is light or shadow.",
    )
    added_edge_ratio: float = Field(
        1.25, gt=1,
        description="Edge energy along a region's outline, now over the reference, at or above which it is an added "
        "object (at or below its inverse: a removed one, a ghost).",
    )
    global_change_fraction: float = Field(
        0.5, gt=0, le=1,
        description="When more than this fraction of the frame changes at once (light switched, IR cut, camera moved) "
        "the reference starts again from that frame, keeping the regions already known.",
    )

    @model_validator(mode="after")
    def _taus(self) -> SceneModelConfig:
        if self.short_tau_s >= self.long_tau_s:
            raise ValueError(f"short_tau_s ({self.short_tau_s}) must be shorter than long_tau_s ({self.long_tau_s})")
        return self
