"""Config models owned by `ingest`: how to reach a camera and how often to look at it."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ReconnectConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    initial_s: float = Field(0.5, gt=0, description="First wait before reconnecting after a failure, seconds.")
    # A low cap: a camera that comes back streams again within a few seconds, and a reconnect
    # attempt to a dead camera costs one refused TCP connect.
    max_s: float = Field(3.0, gt=0, description="Cap on the reconnect wait, seconds.")
    jitter: float = Field(0.2, ge=0, le=1, description="Random spread added to each wait, as a fraction of it.")


class VideoInputConfig(BaseModel):
    """Transport settings shared by every camera unless a camera overrides them."""

    model_config = ConfigDict(extra="forbid")

    rtsp_transport: Literal["tcp", "udp"] = Field("tcp", description="RTSP transport; TCP survives lossy networks.")
    socket_timeout_s: float = Field(
        5.0, gt=0, description="Socket timeout for network sources; a frozen server errors after about twice this."
    )
    reconnect: ReconnectConfig = Field(default_factory=ReconnectConfig, description="Reconnect backoff.")
    stall_after_s: float = Field(
        5.0, gt=0,
        description="Watchdog: a camera that delivered no video packet for this long is `stalled`, even with its socket open.",
    )
    picture_timeout_s: float = Field(
        20.0, gt=0,
        description="Reconnect when packets arrive but no picture was decoded for this long (a stream of garbage).",
    )
    file_start: Literal["beginning", "wallclock"] = Field(
        "beginning",
        description="Where a looping file source starts: at its beginning, or where it would be had it looped "
        "since the Unix epoch (`wallclock`), so every worker that picks the camera up sees the same scene at the "
        "same moment, like a live camera (cluster tests and demos).",
    )
    decode: Literal["auto", "keyframes", "all"] = Field(
        "auto",
        description="`auto` decodes keyframes only while the analysis rate is at or below the keyframe rate, "
        "else every frame; `keyframes`/`all` force one mode.",
    )
