"""Config of what keeps the service up for months: retention, the disk guard, readiness, login limits."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

DAY = 86400.0
MIB = 1024 * 1024
GIB = 1024 * MIB


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StoreRetention(_Strict):
    max_age_s: float | None = Field(description="Remove entries older than this many seconds; null: no age limit.", gt=0)
    max_bytes: int | None = Field(description="Remove the oldest entries while the store holds more than this many "
                                  "bytes; null: no size limit.", ge=0)


def _keep(days: float, size: int) -> StoreRetention:
    return StoreRetention(max_age_s=days * DAY, max_bytes=size)


class RetentionConfig(_Strict):
    enabled: bool = Field(True, description="Run retention in the background.")
    interval_s: float = Field(600.0, gt=0, description="Seconds between two retention runs (and one right after start).")
    outbox: StoreRetention = Field(
        default_factory=lambda: _keep(30, 2 * GIB),
        description="Events delivered to Kafka (or kept back by a closed work order): 30 days, 2 GiB by default. "
        "Undelivered and parked events and every event of an open incident are never removed.")
    evidence: StoreRetention = Field(
        default_factory=lambda: _keep(30, 20 * GIB),
        description="Evidence files (snapshots, crops, clips): 30 days, 20 GiB by default. Files named by an "
        "undelivered event or by an event of an open incident are never removed.")
    deadletters: StoreRetention = Field(
        default_factory=lambda: _keep(14, 256 * MIB),
        description="Rejected sensor messages with their raw payloads: 14 days, 256 MiB by default "
        "(on top of `sensors.deadletters.max_rows`).")
    audit: StoreRetention = Field(
        default_factory=lambda: _keep(400, 256 * MIB),
        description="The audit log (in the console database): 400 days, 256 MiB by default.")
    console: StoreRetention = Field(
        default_factory=lambda: _keep(400, 128 * MIB),
        description="Saved camera config versions (in the console database): 400 days, 128 MiB by default; "
        "each camera's newest version is always kept.")
    min_file_age_s: float = Field(
        600.0, ge=0, description="Evidence younger than this is never removed for size (its event may not be "
        "in the outbox yet).")


class DiskGuardConfig(_Strict):
    enabled: bool = Field(True, description="Watch the free space of the data, outbox and evidence filesystems.")
    check_interval_s: float = Field(5.0, gt=0, description="Seconds between two free-space checks.")
    evidence_min_free_bytes: int = Field(
        512 * MIB, ge=0, description="Below this many free bytes new evidence is refused (events go out without "
        "it); the first threshold to trip.")
    events_min_free_bytes: int = Field(
        64 * MIB, ge=0, description="Below this many free bytes new events are held in memory instead of being "
        "written to the outbox (see `hold_max_events`); written in order once space returns.")
    hold_max_events: int = Field(
        10000, ge=0, description="Events held in memory while the outbox cannot be written; beyond this the "
        "oldest held are dropped (counted and logged). Held events are lost if the process dies.")

    @model_validator(mode="after")
    def _order(self) -> DiskGuardConfig:
        if self.events_min_free_bytes > self.evidence_min_free_bytes:
            raise ValueError(f"events_min_free_bytes ({self.events_min_free_bytes}) is above evidence_min_free_bytes "
                             f"({self.evidence_min_free_bytes}): evidence must be refused before events")
        return self


class ReadinessConfig(_Strict):
    dispatch_failing_s: float = Field(
        120.0, gt=0, description="`/readyz` fails once Kafka dispatch has been failing (no good round) this long.")
    min_cameras_online: float = Field(
        0.5, ge=0, le=1, description="`/readyz` fails when fewer than this fraction of the running cameras are "
        "online (after `startup_grace_s`); 0 turns the check off.")
    startup_grace_s: float = Field(
        60.0, ge=0, description="Seconds after start before the camera check counts: cameras take a while to connect.")


class LoginLimitConfig(_Strict):
    window_s: float = Field(300.0, gt=0, description="Failed authentications are counted over this many seconds.")
    max_failures_per_client: int = Field(
        20, ge=1, description="Failures from one client address within `window_s` after which its attempts are "
        "refused (429) until the window has passed.")
    max_failures_per_account: int = Field(
        10, ge=1, description="Failures naming one token id within `window_s` after which attempts with that id are "
        "refused (429) until the window has passed.")
