"""Config models owned by `ingest` for IoT sensors: the MQTT connection, topic patterns and the
per-vendor payload decoder profiles. Times are seconds."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MqttTlsConfig(_Strict):
    ca_file: Path | None = Field(None, description="CA certificate (PEM) the broker's certificate must chain to; default: the system CAs.")
    cert_file: Path | None = Field(None, description="Client certificate (PEM) for brokers that want mutual TLS.")
    key_file: Path | None = Field(None, description="Private key (PEM) of the client certificate.")
    insecure: bool = Field(False, description="Skip the host name check of the broker's certificate. Never in production.")


class MqttConfig(_Strict):
    host: str = Field("127.0.0.1", description="Broker host name or address.")
    port: int = Field(1883, ge=1, le=65535, description="Broker port (1883 plain, 8883 TLS by convention).")
    protocol: Literal["5", "3.1.1"] = Field("5", description="MQTT protocol version.")
    client_id: str = Field(
        "xueliang-ingest", min_length=1, max_length=128,
        description="Client id; a persistent session is bound to it, so give every instance its own.",
    )
    username: str | None = Field(None, description="User name for password authentication.")
    password: SecretStr | None = Field(None, description="Password; never logged or shown by the API.")
    tls: MqttTlsConfig | None = Field(None, description="Connect over TLS; absent means plain TCP.")
    keepalive_s: int = Field(30, ge=5, le=3600, description="Keep-alive interval, seconds.")
    clean_start: bool = Field(
        False, description="Start a fresh session on connect. Off: the broker keeps the session and queues "
        "QoS 1 messages while the service is down.",
    )
    session_expiry_s: int = Field(
        7 * 86400, ge=0, le=0xFFFFFFFF,
        description="MQTT 5: how long the broker keeps the session after a disconnect, seconds.",
    )
    qos: Literal[0, 1] = Field(1, description="Subscription QoS; 1 means nothing is lost between broker and service.")
    shared_group: str | None = Field(
        None, pattern=r"^[^/+#]+$",
        description="Subscribe as `$share/<group>/<topic>` so instances in the same group split one feed.",
    )
    reconnect_min_s: int = Field(1, ge=1, description="First wait before reconnecting, seconds.")
    reconnect_max_s: int = Field(30, ge=1, description="Cap on the reconnect wait, seconds.")
    queue_size: int = Field(
        10_000, ge=10, description="Messages read from the broker but not yet handled; when full the "
        "client stops reading and the broker holds the rest.",
    )
    connect_timeout_s: float = Field(10.0, gt=0, description="How long start-up waits for the first connection before going on retrying in the background.")


class FieldConfig(_Strict):
    path: str = Field(
        pattern=r"^[^.\[\]]+(\.[^.\[\]]+|\[\d+\])*$",
        description="Where the value sits in the JSON payload: dotted keys and list indexes, e.g. `data.pm25` or `vals[0].v`.",
    )
    type: Literal["number", "bool"] = Field("number", description="number: JSON number; bool: JSON true/false or 0/1.")
    scale: float = Field(1.0, description="Multiply a number by this to get the canonical unit (e.g. 0.01 for cm -> m).")
    offset: float = Field(0.0, description="Then add this.")
    min: float | None = Field(None, description="Smallest plausible value after scaling; below it the payload is rejected as out of range.")
    max: float | None = Field(None, description="Largest plausible value after scaling; above it the payload is rejected as out of range.")
    required: bool = Field(True, description="Reject a payload without this field; optional fields are simply left out.")
    strings: bool = Field(False, description="Also accept numbers sent as JSON strings, e.g. \"23.5\".")


class DecoderProfile(_Strict):
    """How one vendor's JSON payload becomes a reading."""

    description: str = Field("", description="What device and vendor this profile is for.")
    values: dict[str, FieldConfig] = Field(min_length=1, description="Reading value name -> where and how to read it.")
    sensor_id_path: str | None = Field(
        None, description="JSON path of the sensor id in the payload, for topics that do not carry it.",
    )
    time_path: str | None = Field(None, description="JSON path of the device timestamp; absent or null: the arrival time is used.")
    time_format: Literal["unix_s", "unix_ms", "iso8601"] = Field("unix_s", description="How the device timestamp is written.")


class TopicConfig(_Strict):
    pattern: str = Field(
        description="Topic filter with MQTT wildcards; the level written `{sensor_id}` is a `+` whose value is the sensor id, "
        "e.g. `acme/smoke/{sensor_id}/up`. Without it the profile's `sensor_id_path` names the id.",
    )
    profile: str = Field(description="Decoder profile for payloads on these topics (built-in or from `sensors.profiles`).")

    @field_validator("pattern")
    @classmethod
    def _valid_pattern(cls, p: str) -> str:
        levels = p.split("/")
        if not p or p.startswith("$"):
            raise ValueError(f"invalid topic pattern {p!r}")
        for i, lvl in enumerate(levels):
            if lvl == "#" and i != len(levels) - 1:
                raise ValueError(f"`#` must be the last level in {p!r}")
            if lvl not in ("+", "#", "{sensor_id}") and re.search(r"[+#{}]", lvl):
                raise ValueError(f"level {lvl!r} of {p!r} mixes wildcards with text")
        if levels.count("{sensor_id}") > 1:
            raise ValueError(f"`{{sensor_id}}` appears more than once in {p!r}")
        return p

    @property
    def filter(self) -> str:
        return self.pattern.replace("{sensor_id}", "+")


class PayloadLimits(_Strict):
    max_bytes: int = Field(16_384, ge=64, description="Larger payloads are rejected unread.")
    max_future_s: float = Field(300.0, ge=0, description="A device timestamp further ahead of arrival than this is rejected.")
    max_age_s: float = Field(7 * 86400.0, gt=0, description="A device timestamp older than this at arrival is rejected.")


def _f(path: str, **kw) -> FieldConfig:
    return FieldConfig(path=path, **kw)


_BATTERY = {"battery": _f("battery", min=0, max=100, required=False)}

#: Profiles shipped with the service, one per sensor kind seen in grid programmes. Field names
#: follow common vendor payloads; a city adds its vendors' profiles under `sensors.profiles`.
BUILTIN_PROFILES: dict[str, DecoderProfile] = {
    "smoke": DecoderProfile(
        description="Smoke / fire alarm: `{\"alarm\": true, \"battery\": 87, \"ts\": 1700000000}`.",
        values={"smoke": _f("alarm", type="bool"), **_BATTERY}, time_path="ts"),
    "gas": DecoderProfile(
        description="Gas-leak detector (LPG shops, restaurants): concentration in %LEL and an alarm flag.",
        values={"lel": _f("data.lel", min=0, max=100), "alarm": _f("data.alarm", type="bool", required=False), **_BATTERY},
        time_path="ts"),
    "manhole": DecoderProfile(
        description="Manhole-cover sensor: tilt angle in degrees and an open flag.",
        values={"tilt": _f("tilt", min=0, max=180), "open": _f("open", type="bool"), **_BATTERY}, time_path="ts"),
    "water-level": DecoderProfile(
        description="Water-level / waterlogging gauge reporting centimetres; readings in metres.",
        values={"level": _f("level_cm", scale=0.01, min=-5, max=50), **_BATTERY}, time_path="ts"),
    "bin-fill": DecoderProfile(
        description="Bin fill-level sensor: fill in percent.",
        values={"fill": _f("fill", min=0, max=100), **_BATTERY}, time_path="ts"),
    "dust": DecoderProfile(
        description="Construction-site dust monitor: PM10 and PM2.5 in µg/m³, ISO 8601 device time.",
        values={"pm10": _f("data.pm10", min=0, max=20_000), "pm25": _f("data.pm25", min=0, max=20_000)},
        time_path="time", time_format="iso8601"),
    "dust-mg": DecoderProfile(
        description="Dust monitor variant sending mg/m³ as strings and milliseconds; readings in µg/m³.",
        values={"pm10": _f("PM10", scale=1000, min=0, max=20_000, strings=True),
                "pm25": _f("PM25", scale=1000, min=0, max=20_000, strings=True)},
        time_path="t", time_format="unix_ms"),
    "hydrant": DecoderProfile(
        description="Fire-hydrant pressure sensor reporting kPa; readings in MPa.",
        values={"pressure": _f("pressure_kpa", scale=0.001, min=0, max=5), **_BATTERY}, time_path="ts"),
    "ebike-charging": DecoderProfile(
        description="E-bike charging point: current (A), socket temperature (°C), smoke flag.",
        values={"current": _f("current", min=0, max=100), "temperature": _f("temp", min=-40, max=200),
                "smoke": _f("smoke", type="bool", required=False)},
        time_path="ts"),
}


class SensorInputConfig(_Strict):
    """Where sensor readings come from and how each vendor's payload is read."""

    topics: list[TopicConfig] = Field(default_factory=list, description="Topic patterns to subscribe to, each with its decoder profile.")
    profiles: dict[str, DecoderProfile] = Field(
        default_factory=dict, description="Extra decoder profiles by name; they may replace built-in ones "
        f"({', '.join(BUILTIN_PROFILES)}).",
    )
    limits: PayloadLimits = Field(default_factory=PayloadLimits, description="What is rejected before decoding.")

    @model_validator(mode="after")
    def _profiles_exist(self) -> SensorInputConfig:
        known = {**BUILTIN_PROFILES, **self.profiles}
        for i, t in enumerate(self.topics):
            if t.profile not in known:
                raise ValueError(f"topics[{i}].profile: unknown profile {t.profile!r}; known: {sorted(known)}")
            if "{sensor_id}" not in t.pattern and not known[t.profile].sensor_id_path:
                raise ValueError(f"topics[{i}].pattern: {t.pattern!r} has no `{{sensor_id}}` level and profile "
                                 f"{t.profile!r} has no `sensor_id_path`: nothing says which sensor sent a message")
        return self

    def all_profiles(self) -> dict[str, DecoderProfile]:
        return {**BUILTIN_PROFILES, **self.profiles}

    def produced_values(self) -> set[str]:
        """The reading values the subscribed topics' profiles produce."""
        return {v for t in self.topics for v in self.all_profiles()[t.profile].values}
