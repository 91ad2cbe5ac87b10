"""Config models owned by `bridge`: where things are, the grid layer, the outbox, Kafka and the API."""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from bridge.http.auth import ApiToken
from bridge.events.catalogue import ClockLimits
from bridge.kafka.dispatch import KafkaConfig
from bridge.events.model import Crs
from bridge.location.grid import CodeScheme
from bridge.merging.rewrite import MergeConfig
from bridge.reliability_config import LoginLimitConfig

__all__ = ["ApiConfig", "AuthConfig", "ClipConfig", "DeadLetterConfig", "EvidenceConfig", "FeedbackConfig", "GridLayerConfig", "KafkaConfig",
           "ClocksConfig", "LocationConfig", "MapConfig", "MergeConfig", "OutboxConfig"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LocationConfig(_Strict):
    lon: float = Field(ge=-180, le=180, description="Longitude, degrees.")
    lat: float = Field(ge=-90, le=90, description="Latitude, degrees.")
    crs: Crs = Field(description="Coordinate system of lon/lat: wgs84, gcj02 (Amap/Tencent), bd09 (Baidu) or cgcs2000.")


class GridLayerConfig(_Strict):
    path: Path = Field(description="GeoJSON file of the grid layer; relative paths resolve against the config file.")
    crs: Crs = Field("wgs84", description="Coordinate system the layer's polygons are drawn in.")
    scheme: CodeScheme = Field(default_factory=CodeScheme, description="Grid code scheme: digit widths per level.")
    nearest_tolerance_m: float = Field(
        0.0, ge=0, description="A point outside every grid but within this many metres of one gets "
        "the nearest grid, flagged `nearest: true` with `distance_m` in the event; 0 turns this off.")


class OutboxConfig(_Strict):
    path: Path | None = Field(None, description="SQLite file of the durable outbox; default: `<data_dir>/outbox.sqlite3`. "
                                            "One process owns it: a second service or worker started on the same file is refused.")
    fsync: bool = Field(True, description="Commit every event to disk (synchronous=FULL) before it counts as accepted.")


class EvidenceConfig(_Strict):
    dir: Path | None = Field(None, description="Directory of evidence snapshots; default: `<data_dir>/evidence`.")


class ClipConfig(_Strict):
    enabled: bool = Field(True, description="Keep a ring of the encoded stream and attach a clip to each incident.")
    before_s: float = Field(10.0, ge=0, le=60, description="Seconds of video before the opening.")
    after_s: float = Field(5.0, ge=0, le=60, description="Seconds after the opening; the clip follows in an `updated` event.")


class DeadLetterConfig(_Strict):
    path: Path | None = Field(None, description="SQLite file of rejected messages; default: `<data_dir>/deadletters.sqlite3`.")
    max_rows: int = Field(1_000_000, ge=1000, description="Oldest rejected messages beyond this many are deleted (their counts stay).")


class AuthConfig(_Strict):
    tokens: list[ApiToken] = Field(
        default_factory=list, description="Tokens (hashed) kept in the config itself; `xueliang tokens add --print-yaml` makes one.")
    tokens_file: Path | None = Field(
        None, description="Token file managed by `xueliang tokens add|list|revoke`, re-read when it changes; relative to the config file; "
        "default: `<data_dir>/tokens.yaml`.")
    session_ttl_s: float = Field(8 * 3600, gt=0, description="How long a browser session (the cookie `POST /login` sets) lasts, seconds.")
    login_limit: LoginLimitConfig = Field(default_factory=LoginLimitConfig, description="Failed logins (and bad bearer "
                                          "tokens) are rate-limited per client address and per token id.")


class MapConfig(_Strict):
    crs: Literal["wgs84", "gcj02", "cgcs2000"] = Field(
        "wgs84", description="Coordinate system the console's map draws in: grids, cameras and incidents are converted "
        "into it. Set it to your tiles' system: gcj02 for Amap or Tencent tiles, wgs84 for OpenStreetMap-style tiles.")
    tile_url: str = Field(
        "", description="Raster tile URL template of the centre's own tile server, e.g. `http://tiles.local/{z}/{x}/{y}.png`; "
        "empty: the map has a plain background (no tile server is needed).")
    tile_attribution: str = Field("", description="Attribution shown under the tiles.")
    tile_max_zoom: int = Field(18, ge=1, le=22, description="Highest zoom level the tile server has.")
    simplify_m: float = Field(
        0.5, ge=0, description="Grid outlines are simplified to within this many metres for drawing (lookup always uses "
        "the exact polygons); 0 draws them exactly.")
    library_dir: Path | None = Field(
        None, description="MapLibre GL JS's `dist` folder, installed by `make setup` (`npm ci --prefix web`) and served at "
        "`/vendor/maplibre-gl/`; relative to the config file. Default: `web/node_modules/maplibre-gl/dist` of the "
        "source checkout, else of the working directory (the container image).")


class ClocksConfig(_Strict):
    yellow_at: float = Field(0.5, gt=0, lt=1, description="A step's light turns from green to yellow once this "
                             "fraction of its time limit has passed (red once all of it has).")
    limits: dict[str, ClockLimits] = Field(
        default_factory=dict, description="This city's time limits by category code, replacing the catalogue's "
        "`limits` of that category (acceptance, handling, verification, seconds).")


class ApiConfig(_Strict):
    host: str = Field("127.0.0.1", description="Address the HTTP API and operations page listen on.")
    port: int = Field(8000, ge=0, le=65535, description="Port of the HTTP API; 0 picks a free one.")
    enabled: bool = Field(True, description="Serve the API and operations page.")
    auth: AuthConfig = Field(default_factory=AuthConfig, description="API tokens; every endpoint but /healthz needs one.")
    console_db: Path | None = Field(
        None, description="SQLite file of the audit log, the saved camera config versions and the cameras' state changes (availability); default: `<data_dir>/console.sqlite3`.")
    cors_origins: list[str] = Field(
        default_factory=list, description="Origins allowed to call the API from a browser page of theirs (CORS); empty: CORS off.")
    map: MapConfig = Field(default_factory=MapConfig, description="The console's map page: tiles, coordinate system, library.")
    clocks: ClocksConfig = Field(default_factory=ClocksConfig, description="The loop's clocks: time limits per "
                                 "category for the console's green, yellow and red lights and on-time rates.")


class FeedbackConfig(_Strict):
    suppress_s: float = Field(
        3600.0, gt=0, description="After the platform closes a work order, new incidents from the same "
        "source, zone, rule and category are kept in the outbox but not sent for this many seconds "
        "(a message's own `suppress_s` overrides it).")
    verify_timeout_s: float = Field(
        30.0, gt=0, description="A verify request whose camera gives no analysed frame within this many "
        "seconds is answered with `still_present: null` and the reason.")
    verify_max_age_s: float = Field(
        600.0, gt=0, description="Verify requests older than this (by their Kafka timestamp, e.g. read "
        "back after a long outage) are logged and counted, not answered.")
