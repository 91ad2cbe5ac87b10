"""The root config model: one YAML file, validated at start-up.

Each package owns the models of its part (`ingest.stream_config`, `detectors.detector_config`, `bridge.bridge_config`)
and the checks of its part (`detectors.rule_checks`: a rule's zone exists, its category is in the
catalogue; `detectors.model_check`: the models it names are registered and have its classes);
this module composes the models, runs those checks on the whole config and adds the ones that
span parts (a sensor's cameras, files it names). Every error names the file and the field path.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bridge.events.catalogue import Catalogue
from bridge.location.homography import GroundConfig
from bridge.reliability_config import DiskGuardConfig, ReadinessConfig, RetentionConfig
from bridge.http.live.live_config import LiveConfig
from bridge.bridge_config import (ApiConfig, ClipConfig, EvidenceConfig, FeedbackConfig, GridLayerConfig, KafkaConfig, LocationConfig,
                           MergeConfig, OutboxConfig)
from detectors.detection_hash import detection_hash
from detectors.detector_config import RULE_TYPES, ClassConfig, CustomModelConfig, MaskConfig, ModelConfig, ObjectFilterConfig, RuleConfig, SceneModelConfig, TrackerConfig, ZoneConfig
from ingest.config_problems import ConfigError, validation_problems
from ingest.stream_config import VideoInputConfig
from ingest.sensor_input_config import MqttConfig
from ingest.video import is_network_url
from detectors.readers.reader_config import READER_TYPES, PrivacyConfig, ReaderConfig, reader_problems, resolve_reader_paths
from detectors.sensor_rule_config import SENSOR_RULE_TYPES
from detectors.model_check import camera_model_problems, main_model_problems
from detectors.quality import QualityConfig
from detectors.rule_checks import camera_rule_problems, category_problems, check_unique_names, unknown_category
from detectors.schedule import Timezone
from xueliang import config_env
from detectors.gate_config import ChangeGateConfig
from bridge.kafka.cluster_config import ClusterConfig
from detectors.camera_faults import HealthConfig
from xueliang.sensors_section import SensorsConfig


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CameraConfig(_Strict):
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", description="Camera id, unique; appears in events.")
    name: str | None = Field(None, description="Display name.")
    url: str = Field(description="RTSP URL (credentials allowed; they are never shown) or a video file path.")
    analysis_fps: float = Field(2.0, gt=0, le=30, description="Frames per second the detectors look at.")
    location: LocationConfig = Field(description="Where the camera stands; events without a finer location use it.")
    timezone: Timezone = Field("Asia/Shanghai", description="IANA timezone of the camera: rules' active hours are local times.")
    objects: dict[str, ObjectFilterConfig] = Field(
        default_factory=dict, description="Per-class detection filters (score, area, aspect), keyed by class name."
    )
    masks: MaskConfig = Field(default_factory=MaskConfig, description="Include/exclude masks for detections.")
    ground: GroundConfig | None = Field(None, description="Image-to-ground homography from control points; events then locate the object, not the camera.")
    zones: list[ZoneConfig] = Field(default_factory=list, description="Named polygons rules refer to.")
    rules: list[RuleConfig] = Field(default_factory=list, description="Detection rules run on this camera.")
    clip: ClipConfig = Field(default_factory=ClipConfig, description="Evidence clips cut from the encoded stream.")
    quality: QualityConfig = Field(default_factory=QualityConfig, description="Video quality diagnosis (视频质量诊断) thresholds.")
    classes: dict[str, ClassConfig] = Field(
        default_factory=dict,
        description="Classes of the main model (`model.name`) that report on their own, without a rule: class name "
        "-> category and thresholds, like an extra model's `classes`. Rule ids are `model:<class>`.",
    )
    models: list[CustomModelConfig] = Field(
        default_factory=list,
        description="Extra models (garbage, fire and smoke, manhole covers, ...) whose classes map to categories.",
    )
    readers: list[ReaderConfig] = Field(
        default_factory=list, description="Second-stage readers on the crops of tracked objects: plates on "
        "vehicles, state classifiers on bins or manhole covers; their readings go into the events.")
    scene: SceneModelConfig = Field(
        default_factory=SceneModelConfig,
        description="The scene model (reference scene, static new regions) that `dumping` and `pile` rules use.",
    )
    gate: ChangeGateConfig = Field(default_factory=ChangeGateConfig, description="Change gating: the model runs "
                                   "only where the picture changed since it last looked (off: on every frame).")
    recordings: list[str] = Field(
        default_factory=list,
        description="Recorded clips of this camera (video files) the tuning bench can backtest on; "
        "a camera whose url is a file has that one too.",
    )

    @model_validator(mode="after")
    def _references(self) -> CameraConfig:
        check_unique_names(self.zones, self.rules)
        return self

    @property
    def uses_scene(self) -> bool:
        """Some rule reads the scene model (objects of any kind)."""
        return any(r.type == "pile" or (r.type == "dumping" and r.scene_regions) for r in self.rules)

    def detection_hash(self, model: ModelConfig, tracker: TrackerConfig) -> str:
        """Short hash of everything that decides what this camera reports; events carry it."""
        return detection_hash(self, model, tracker)


class LogConfig(_Strict):
    level: Literal["debug", "info", "warning", "error"] = Field("info", description="Minimum log level.")
    format: Literal["json", "console"] = Field("json", description="JSON lines for machines, or console for people.")


class RestartConfig(_Strict):
    carry_over: bool = Field(True, description="At start, carry on the incidents open in the outbox when the "
                             "process stopped (single-process mode; a cluster hands them over in its state topic). "
                             "Off: every rule starts from nothing and an incident open at the stop is never cleared.")
    confirm_s: float = Field(5.0, ge=0, description="A carried-over incident goes on under its `incident_id` when its "
                             "rule sees its condition start within this many seconds of the camera's first analysed "
                             "frame (a sensor's start); it waits that plus the rule's own duration to be seen, and "
                             "clears with a `clear_reason` if it is not.")


class ServiceConfig(_Strict):
    data_dir: Path = Field(
        Path(".data"),
        description="Models, outbox and evidence live here; relative to the working directory. "
        "Default: $XUELIANG_DATA_DIR or `.data`.",
    )
    model: ModelConfig = Field(default_factory=ModelConfig, description="Detection model.")
    tracker: TrackerConfig = Field(default_factory=TrackerConfig, description="Tracker tuning (seconds).")
    video: VideoInputConfig = Field(default_factory=VideoInputConfig, description="Video transport settings.")
    cameras: list[CameraConfig] = Field(default_factory=list, description="The cameras this instance runs (at least one camera or sensor).")
    grid: GridLayerConfig = Field(description="The grid layer events are resolved against.")
    catalogue: Path | None = Field(None, description="Category catalogue YAML; default: the built-in one.")
    outbox: OutboxConfig = Field(default_factory=OutboxConfig, description="The durable outbox.")
    evidence: EvidenceConfig = Field(default_factory=EvidenceConfig, description="Where evidence snapshots are kept.")
    kafka: KafkaConfig = Field(default_factory=KafkaConfig, description="The dispatch queue; off when no servers are set.")
    merge: MergeConfig = Field(default_factory=MergeConfig, description="Cross-source merge: one incident, one record.")
    feedback: FeedbackConfig = Field(default_factory=FeedbackConfig, description="What the platform's feedback does "
                                     "(topic: `kafka.feedback_topic`).")
    api: ApiConfig = Field(default_factory=ApiConfig, description="HTTP API and operations page.")
    live: LiveConfig = Field(default_factory=LiveConfig, description="Live video in the console from a restreamer.")
    health: HealthConfig = Field(default_factory=HealthConfig, description="Camera faults as incidents.")
    log: LogConfig = Field(default_factory=LogConfig, description="Logging.")
    retention: RetentionConfig = Field(default_factory=RetentionConfig, description="How long each store keeps "
                                       "data (age and size); see docs/reliability.md.")
    disk: DiskGuardConfig = Field(default_factory=DiskGuardConfig, description="Free-space guard: refuse evidence, "
                                  "then hold events, when the disk fills; resumes by itself.")
    readiness: ReadinessConfig = Field(default_factory=ReadinessConfig, description="When `/readyz` says not ready.")
    mqtt: MqttConfig | None = Field(None, description="The MQTT broker sensors report to; needed when `sensors.devices` is not empty.")
    sensors: SensorsConfig = Field(default_factory=SensorsConfig, description="IoT sensors: registry, topics, decoder profiles, rules.")
    cluster: ClusterConfig = Field(default_factory=ClusterConfig, description="Many workers over Kafka: cameras "
                                   "from the registry topic by consumer group, merge partitioned by grid.")
    restart: RestartConfig = Field(default_factory=RestartConfig, description="What a restart carries over: the "
                                   "incidents open when the process stopped.")
    privacy: PrivacyConfig = Field(default_factory=PrivacyConfig, description="Plate numbers (personal data) in "
                                   "events, logs and API responses.")

    @model_validator(mode="after")
    def _sources(self) -> ServiceConfig:
        if self.cluster.enabled:
            if not self.kafka.bootstrap_servers:
                raise ValueError("`cluster.enabled` needs `kafka.bootstrap_servers`: the cluster runs over Kafka")
            if self.sensors.devices and self.mqtt is not None and not self.mqtt.shared_group:
                raise ValueError("with `cluster.enabled` and sensors, set `mqtt.shared_group`: the workers then split "
                                 "the sensor feeds (MQTT shared subscription) instead of each reading everything")
            if self.cameras:
                raise ValueError("with `cluster.enabled` the cameras come from the registry topic "
                                 f"`{self.cluster.control_topic}`: publish them with `xueliang cameras publish` "
                                 "and leave `cameras` empty here")
        elif not self.cameras and not self.sensors.devices:
            raise ValueError("configure at least one camera (`cameras`) or sensor (`sensors.devices`)")
        if self.sensors.devices and self.mqtt is None:
            raise ValueError("`sensors.devices` are configured but no `mqtt` broker to receive them from")
        return self

    @field_validator("cameras")
    @classmethod
    def _unique_cameras(cls, cams: list[CameraConfig]) -> list[CameraConfig]:
        ids = [c.id for c in cams]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"camera ids must be unique; repeated: {dupes}")
        return cams

    def camera(self, camera_id: str) -> CameraConfig:
        for cam in self.cameras:
            if cam.id == camera_id:
                return cam
        raise KeyError(f"no camera {camera_id!r}; configured: {[c.id for c in self.cameras]}")

    @property
    def outbox_path(self) -> Path:
        return self.outbox.path or self.data_dir / "outbox.sqlite3"

    @property
    def deadletters_path(self) -> Path:
        return self.sensors.deadletters.path or self.data_dir / "deadletters.sqlite3"

    @property
    def evidence_dir(self) -> Path:
        return self.evidence.dir or self.data_dir / "evidence"

    @property
    def console_db_path(self) -> Path:
        return self.api.console_db or self.data_dir / "console.sqlite3"

    @property
    def tokens_path(self) -> Path:
        return self.api.auth.tokens_file or self.data_dir / "tokens.yaml"


# The "file" of a config given by environment variables alone; relative paths resolve against the working directory.
ENV_ONLY = Path("<environment>")


def load_config(path: str | Path | None, environ: Mapping[str, str] | None = None) -> ServiceConfig:
    """Read, validate and cross-check a config file; raise ConfigError listing every problem.

    `XUELIANG__SECTION__FIELD` variables of `environ` (default: the process's) override fields
    (xueliang/config_env.py); with `path` None the config comes from them alone.
    """
    environ = os.environ if environ is None else environ
    path = ENV_ONLY if path is None else Path(path)
    try:
        raw = {} if path is ENV_ONLY else yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(path, [("", "file not found")]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ConfigError(path, [("", f"invalid YAML: {where}{getattr(exc, 'problem', exc)}")]) from None
    if not isinstance(raw, dict):
        raise ConfigError(path, [("", "the top level must be a mapping")])
    if "data_dir" not in raw and environ.get("XUELIANG_DATA_DIR"):
        raw["data_dir"] = environ["XUELIANG_DATA_DIR"]
    applied, problems = config_env.apply(raw, environ, ServiceConfig)
    if problems:
        raise ConfigError(path, problems)
    try:
        cfg = ServiceConfig.model_validate(raw)
    except ValidationError as exc:
        problems = validation_problems(exc, RULE_TYPES + SENSOR_RULE_TYPES + READER_TYPES)
        raise ConfigError(path, config_env.blame(problems, applied)) from None
    _resolve_paths(cfg, path.parent)
    problems = cross_check(cfg)
    if problems:
        raise ConfigError(path, config_env.blame(problems, applied))
    return cfg


def _resolve_paths(cfg: ServiceConfig, base: Path) -> None:
    """Relative paths in a config file are relative to the file's folder."""
    tls = cfg.mqtt.tls if cfg.mqtt is not None else None
    fields = [(cfg.grid, "path"), *[(tls, n) for n in ("ca_file", "cert_file", "key_file") if tls is not None],
              (cfg.api.auth, "tokens_file"), (cfg.api.map, "library_dir"), (cfg, "catalogue"),
              *[(m, "path") for cam in cfg.cameras for m in cam.models]]
    for holder, name in fields:
        value = getattr(holder, name)
        if value is not None and not value.is_absolute():
            setattr(holder, name, (base / value).resolve())
    for cam in cfg.cameras:
        if not is_network_url(cam.url) and not Path(cam.url).is_absolute():
            cam.url = str((base / cam.url).resolve())
        cam.recordings = [r if Path(r).is_absolute() else str((base / r).resolve()) for r in cam.recordings]
        resolve_reader_paths(cam.readers, base)


def camera_problems(cfg: ServiceConfig, cam: CameraConfig, at: str,
                    catalogue: Catalogue | None) -> list[tuple[str, str]]:
    """What is wrong with one camera against the rest of the config (also run on registry records)."""
    problems: list[tuple[str, str]] = []
    if not is_network_url(cam.url) and not Path(cam.url).exists():
        problems.append((f"{at}.url", f"video file not found: {cam.url}"))
    problems += camera_rule_problems(cam, at, catalogue)
    problems += camera_model_problems(cfg.data_dir, cfg.model, cam, at, catalogue)
    problems += reader_problems(cam.readers, at, cfg.privacy)
    return problems + [(f"{at}.recordings[{j}]", f"video file not found: {rec}")
                       for j, rec in enumerate(cam.recordings) if not Path(rec).is_file()]


def cross_check(cfg: ServiceConfig) -> list[tuple[str, str]]:
    """The checks that span parts of the config (and the files it names), after validation."""
    problems: list[tuple[str, str]] = main_model_problems(cfg.data_dir, cfg.model)
    if not cfg.grid.path.exists():
        problems.append(("grid.path", f"file not found: {cfg.grid.path}"))
    try:
        catalogue = Catalogue.load(cfg.catalogue)
    except (OSError, ValueError) as exc:
        problems.append(("catalogue", str(exc)))
        catalogue = None
    for i, cam in enumerate(cfg.cameras):
        problems += camera_problems(cfg, cam, f"cameras[{i}]", catalogue)
    if (msg := unknown_category(cfg.health.category, catalogue)) is not None:
        problems.append(("health.category", msg))
    cameras = {c.id for c in cfg.cameras}
    for i, dev in enumerate(cfg.sensors.devices):
        problems += [(f"sensors.devices[{i}].cameras", f"no camera {cam!r}; cameras: {sorted(cameras)}")
                     for cam in dev.cameras if cam not in cameras and not cfg.cluster.enabled]  # clustered: registry
        problems += category_problems(dev.rules, f"sensors.devices[{i}].rules", catalogue)
    tls = cfg.mqtt.tls if cfg.mqtt is not None else None
    problems += [(f"mqtt.tls.{name}", f"file not found: {getattr(tls, name)}") for name in ("ca_file", "cert_file", "key_file")
                 if tls is not None and getattr(tls, name) is not None and not getattr(tls, name).exists()]
    return problems + [(f"api.clocks.limits.{code}", msg) for code in cfg.api.clocks.limits
                       if (msg := unknown_category(code, catalogue)) is not None]
