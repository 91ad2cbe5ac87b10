"""From an MQTT message to a `Reading`, or to a `Rejected` saying exactly what was wrong.

Decoding is on the hot path (tens of thousands of messages a second), so profiles are compiled
once into plain tuples and no validation library runs per message. Nothing here raises on bad
input: every way a payload can be wrong ends in a `Rejected` with a reason from `REASONS`.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ingest.sensor_input_config import DecoderProfile, FieldConfig, PayloadLimits, TopicConfig

#: Every reason a payload can be rejected for; metrics and the dead-letter store use these names.
REASONS = (
    "oversized", "not_json", "not_object", "unknown_topic", "no_sensor_id", "unknown_sensor",
    "missing_field", "wrong_type", "out_of_range", "bad_timestamp", "time_future", "time_past",
)

Value = float | bool


@dataclass(frozen=True, slots=True)
class Reading:
    sensor_id: str
    kind: str
    values: dict[str, Value]  # canonical units after the profile's scaling
    device_time: float | None  # Unix seconds from the payload, if it had one
    arrival_time: float  # Unix seconds when the service received it
    raw: bytes
    topic: str

    @property
    def time(self) -> float:
        """The time rules use: the device's own clock, falling back to arrival."""
        return self.arrival_time if self.device_time is None else self.device_time


@dataclass(frozen=True, slots=True)
class Rejected:
    reason: str  # one of REASONS
    detail: str  # what exactly was wrong, for people
    topic: str
    sensor_id: str | None
    raw: bytes
    arrival_time: float


def _compile_path(path: str) -> tuple[str | int, ...]:
    out: list[str | int] = []
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        out.append(int(part[1:-1]) if part.startswith("[") else part)
    return tuple(out)


_MISSING = object()


def _get(doc: Any, path: tuple[str | int, ...]) -> Any:
    for key in path:
        if isinstance(key, int):
            if not isinstance(doc, list) or key >= len(doc):
                return _MISSING
        elif not isinstance(doc, dict):
            return _MISSING
        doc = doc.get(key, _MISSING) if isinstance(key, str) else doc[key]
        if doc is _MISSING:
            return _MISSING
    return doc


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    path: tuple[str | int, ...]
    dotted: str
    is_bool: bool
    scale: float
    offset: float
    lo: float
    hi: float
    required: bool
    strings: bool


@dataclass(frozen=True, slots=True)
class _Profile:
    name: str
    fields: tuple[_Field, ...]
    id_path: tuple[str | int, ...] | None
    time_path: tuple[str | int, ...] | None
    time_format: str


def _compile_field(name: str, f: FieldConfig) -> _Field:
    return _Field(name, _compile_path(f.path), f.path, f.type == "bool", f.scale, f.offset,
                  -math.inf if f.min is None else f.min, math.inf if f.max is None else f.max,
                  f.required, f.strings)


def compile_profile(name: str, p: DecoderProfile) -> _Profile:
    return _Profile(name, tuple(_compile_field(k, f) for k, f in p.values.items()),
                    _compile_path(p.sensor_id_path) if p.sensor_id_path else None,
                    _compile_path(p.time_path) if p.time_path else None, p.time_format)


class _Reject(Exception):
    """Internal: unwinds the decoder to the one place that builds a Rejected."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason, self.detail = reason, detail


class Decoder:
    """Decodes messages of the configured topics for the known sensors (id -> kind)."""

    def __init__(self, topics: list[TopicConfig], profiles: dict[str, DecoderProfile],
                 sensors: dict[str, str], limits: PayloadLimits) -> None:
        compiled = {name: compile_profile(name, p) for name, p in profiles.items() if any(t.profile == name for t in topics)}
        self._patterns = [(t.pattern.split("/"), compiled[t.profile]) for t in topics]
        self.sensors = sensors
        self.limits = limits
        self._topic_cache: dict[str, tuple[_Profile, str | None] | None] = {}

    def _match(self, topic: str) -> tuple[_Profile, str | None] | None:
        hit = self._topic_cache.get(topic, _MISSING)
        if hit is not _MISSING:
            return hit  # type: ignore[return-value]
        levels = topic.split("/")
        found = None
        for pattern, profile in self._patterns:
            sid = _match_levels(pattern, levels)
            if sid is not False:
                found = (profile, sid)
                break
        if len(self._topic_cache) > 100_000:  # garbage topics must not grow it without bound
            self._topic_cache.clear()
        self._topic_cache[topic] = found
        return found

    def decode(self, topic: str, payload: bytes, arrival: float) -> Reading | Rejected:
        sid: str | None = None
        try:
            if len(payload) > self.limits.max_bytes:
                raise _Reject("oversized", f"payload of {len(payload)} bytes exceeds {self.limits.max_bytes}")
            match = self._match(topic)
            if match is None:
                raise _Reject("unknown_topic", "topic matches no configured pattern")
            profile, sid = match
            try:
                doc = json.loads(payload)
            except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
                raise _Reject("not_json", f"not JSON: {str(exc)[:120]}") from None
            if not isinstance(doc, dict):
                raise _Reject("not_object", f"JSON {type(doc).__name__} where an object was expected")
            if profile.id_path is not None and sid is None:
                v = _get(doc, profile.id_path)
                if not isinstance(v, (str, int)) or isinstance(v, bool) or v == "":
                    raise _Reject("no_sensor_id", "payload carries no sensor id (string or integer) at "
                                  + ".".join(map(str, profile.id_path)))
                sid = str(v)
            kind = self.sensors.get(sid)  # type: ignore[arg-type]
            if kind is None:
                raise _Reject("unknown_sensor", f"sensor {sid!r} is not in the registry")
            values = {}
            for f in profile.fields:
                v = _get(doc, f.path)
                if v is _MISSING or v is None:
                    if f.required:
                        raise _Reject("missing_field", f"field {f.dotted!r} ({f.name}) is missing")
                    continue
                values[f.name] = _value(f, v)
            device_time = None
            if profile.time_path is not None:
                t = _get(doc, profile.time_path)
                if t is not _MISSING and t is not None:
                    device_time = _timestamp(t, profile.time_format)
                    if device_time - arrival > self.limits.max_future_s:
                        raise _Reject("time_future", f"device time is {device_time - arrival:.0f} s in the future")
                    if arrival - device_time > self.limits.max_age_s:
                        raise _Reject("time_past", f"device time is {arrival - device_time:.0f} s old")
            return Reading(sid, kind, values, device_time, arrival, payload, topic)  # type: ignore[arg-type]
        except _Reject as r:
            return Rejected(r.reason, r.detail, topic, sid, payload, arrival)


def _match_levels(pattern: list[str], levels: list[str]) -> str | None | bool:
    """The sensor id (or None) if the topic matches the pattern, else False."""
    sid = None
    for i, p in enumerate(pattern):
        if p == "#":
            return sid
        if i >= len(levels):
            return False
        if p == "{sensor_id}":
            if not levels[i]:
                return False
            sid = levels[i]
        elif p != "+" and p != levels[i]:
            return False
    return sid if len(levels) == len(pattern) else False


def _value(f: _Field, v: Any) -> Value:
    if f.is_bool:
        if v is True or v is False:
            return v
        if type(v) is int and v in (0, 1):
            return bool(v)
        raise _Reject("wrong_type", f"field {f.dotted!r} ({f.name}): expected true/false or 0/1, got {_show(v)}")
    if type(v) is str and f.strings:
        try:
            v = float(v)
        except ValueError:
            raise _Reject("wrong_type", f"field {f.dotted!r} ({f.name}): expected a number, got {_show(v)}") from None
    elif type(v) not in (int, float):
        raise _Reject("wrong_type", f"field {f.dotted!r} ({f.name}): expected a number, got {_show(v)}")
    try:
        x = float(v) * f.scale + f.offset
    except OverflowError:
        raise _Reject("out_of_range", f"field {f.dotted!r} ({f.name}): number too large") from None
    if not math.isfinite(x):
        raise _Reject("out_of_range", f"field {f.dotted!r} ({f.name}): {_show(v)} is not finite")
    if x < f.lo or x > f.hi:
        raise _Reject("out_of_range", f"field {f.dotted!r} ({f.name}): {x:g} outside [{f.lo:g}, {f.hi:g}]")
    return x


def _timestamp(t: Any, fmt: str) -> float:
    if fmt == "iso8601":
        if type(t) is not str:
            raise _Reject("bad_timestamp", f"device time: expected an ISO 8601 string, got {_show(t)}")
        try:
            dt = datetime.fromisoformat(t)
        except ValueError:
            raise _Reject("bad_timestamp", f"device time {_show(t)} is not ISO 8601") from None
        if dt.tzinfo is None:
            raise _Reject("bad_timestamp", f"device time {_show(t)} has no UTC offset")
        return dt.timestamp()
    if type(t) not in (int, float):
        raise _Reject("bad_timestamp", f"device time: expected a number, got {_show(t)}")
    try:
        x = float(t) / (1000.0 if fmt == "unix_ms" else 1.0)
    except OverflowError:
        raise _Reject("bad_timestamp", "device time: number too large") from None
    if not math.isfinite(x):
        raise _Reject("bad_timestamp", f"device time {_show(t)} is not finite")
    return x


def _show(v: Any) -> str:
    s = repr(v)
    return f"{type(v).__name__} {s[:60]}{'…' if len(s) > 60 else ''}"
