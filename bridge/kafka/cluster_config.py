"""Settings for running many workers over Kafka (docs/scale-out.md).

Off by default: one process runs every configured camera and the merge itself, and needs no Kafka.
On, each worker takes the cameras its consumer group assigns it from the camera registry topic,
and the merge runs partitioned by grid in a second consumer group.
"""
from __future__ import annotations

import os
import socket

from pydantic import BaseModel, ConfigDict, Field


class ClusterConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(
        False, description="Take cameras from the registry topic through the worker consumer group instead of "
        "`cameras`, and merge through the incidents topic; needs `kafka.bootstrap_servers`.")
    worker_id: str | None = Field(
        None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
        description="This worker's name in events, status records and logs; default: host name and process id.")
    group: str = Field("xueliang-workers", description="Consumer group of the workers on the control topic: its "
                       "partition assignment decides which worker runs which camera.")
    control_topic: str = Field("xueliang.cameras", description="The camera registry: compacted, key camera id, "
                               "value the camera's config as JSON, a null value removes the camera.")
    control_partitions: int = Field(64, ge=1, le=10000, description="Partitions of the control topic when it is "
                                    "created; the most workers that can share the cameras.")
    state_topic: str = Field("xueliang.camera-state", description="Compacted: each camera's open incidents, owner "
                             "and generation, so the next owner carries them on.")
    status_topic: str = Field("xueliang.camera-status", description="Compacted: each running camera's status with "
                              "its owner and generation, every `status_interval_s`.")
    status_interval_s: float = Field(5.0, gt=0, description="Seconds between a worker's status records of one camera.")
    incidents_topic: str = Field("xueliang.incidents", description="Internal topic of per-camera and per-sensor "
                                 "incidents, keyed by grid code, before the merge.")
    incidents_partitions: int = Field(12, ge=1, le=10000, description="Partitions of the incidents topic when it is "
                                      "created; the most workers that can share the merge.")
    readings_topic: str = Field("xueliang.readings", description="Sensor readings re-keyed by sensor id: MQTT "
                                "shared subscriptions spread one sensor's messages over workers, so each reading goes "
                                "through this topic to the one worker that owns the sensor's rules.")
    sensor_group: str = Field("xueliang-sensors", description="Consumer group of the sensor rule stages on the "
                              "readings topic.")
    sensor_rebuild_s: float = Field(3600.0, ge=0, description="A sensor partition's new owner replays this many "
                                    "seconds of its readings to rebuild rule state (durations, hysteresis, open incidents).")
    merge_group: str = Field("xueliang-merge", description="Consumer group of the merge stages on the incidents topic.")
    replication_factor: int = Field(1, ge=1, description="Replication factor of the topics this service creates.")
    session_timeout_ms: int = Field(10000, ge=1000, description="A worker silent this long leaves the group and "
                                    "its cameras move; the main part of the failover time.")
    heartbeat_interval_ms: int = Field(2000, ge=100, description="Heartbeat period to the group coordinator.")
    fence_check_s: float = Field(2.0, gt=0, description="Seconds between commits that prove this worker still "
                                 "holds its generation; a refused commit stops its cameras at once (an "
                                 "unanswered one does not: with Kafka unreachable the cameras keep running).")
    handover_confirm_s: float = Field(
        5.0, ge=0, description="A camera's new owner carries on an incident it took over when the rule's subject is "
        "in view within this many seconds of the takeover; it waits this long plus the rule's own duration. Unseen "
        "by then, or only later (a new occurrence), the incident clears.")
    feedback_lookback_s: float = Field(
        172800.0, gt=0, description="Each worker keeps the latest event of every incident the platform got on the "
        "dispatch topic in the last this many seconds, to resolve the platform's feedback (closed work orders, "
        "verify requests) to the incident's cameras whichever worker runs them; feedback about an older incident is "
        "resolved from the worker's own outbox only.")
    exactly_once: bool = Field(True, description="Merge stage writes and its offsets in one Kafka transaction. Off "
                               "for brokers without transactions (e.g. Tansu): at least once, duplicates keep "
                               "their `event_id`.")

    def worker_name(self) -> str:
        return self.worker_id or f"{socket.gethostname()}-{os.getpid()}"
