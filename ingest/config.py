"""Config models owned by `ingest`: how to reach a camera and how often to look at it."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ReconnectConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    initial_s: float = Field(1.0, gt=0, description="First wait before reconnecting after a failure, seconds.")
    max_s: float = Field(30.0, gt=0, description="Cap on the reconnect wait, seconds.")
    jitter: float = Field(0.2, ge=0, le=1, description="Random spread added to each wait, as a fraction of it.")


class VideoInputConfig(BaseModel):
    """Transport settings shared by every camera unless a camera overrides them."""

    model_config = ConfigDict(extra="forbid")

    rtsp_transport: Literal["tcp", "udp"] = Field("tcp", description="RTSP transport; TCP survives lossy networks.")
    socket_timeout_s: float = Field(
        5.0, gt=0, description="Socket timeout for network sources; a frozen server errors after about twice this."
    )
    reconnect: ReconnectConfig = Field(default_factory=ReconnectConfig, description="Reconnect backoff.")
