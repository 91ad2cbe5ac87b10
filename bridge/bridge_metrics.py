"""Prometheus metrics of the bridge, registered once on the default registry.

Other parts of the bridge add their own metrics here, so every series lives in one module.
"""
from __future__ import annotations

from prometheus_client import Counter, Gauge

DISPATCH_SENT = Counter(
    "xueliang_dispatch_sent_total",
    "Events acknowledged by Kafka and marked delivered in the outbox.",
)
DISPATCH_ERRORS = Counter(
    "xueliang_dispatch_errors_total",
    "Kafka dispatch failures: producer start failures, send failures and failed acknowledgements.",
)
OUTBOX_BACKLOG = Gauge(
    "xueliang_outbox_backlog",
    "Events accepted into the outbox and not yet acknowledged by Kafka.",
)
EVENTS = Counter(
    "xueliang_events_total",
    "Events accepted into the outbox, by status and category.",
    ["status", "category"],
)
FEEDBACK = Counter(
    "xueliang_feedback_total",
    "Valid feedback messages received from the platform, by type.",
    ["type"],
)
FEEDBACK_REJECTED = Counter(
    "xueliang_feedback_rejected_total",
    "Feedback messages that could not be acted on, by reason (invalid_json, invalid_message, "
    "unknown_incident, not_here, handler_error).",
    ["reason"],
)
SUPPRESSED = Counter(
    "xueliang_events_suppressed_total",
    "Events kept in the outbox but not sent because a closed work order suppresses re-reporting.",
    ["status", "category"],
)
VERIFICATIONS = Counter(
    "xueliang_verifications_total",
    "Verification events published, by result (present, gone, unknown).",
    ["result"],
)
MERGE_CONSUMED = Counter(
    "xueliang_merge_consumed_total",
    "Incident records the Kafka merge stage took from the incidents topic (rebuilds excluded).",
)
MERGE_FENCED = Counter(
    "xueliang_merge_fenced_total",
    "Incident records dropped because a newer owner generation of their camera had already spoken.",
)
MERGE_REJECTED = Counter(
    "xueliang_merge_rejected_total",
    "Incident records that were not a valid event, logged with their partition and offset and skipped.",
)
MERGE_PARTITIONS = Gauge(
    "xueliang_merge_partitions",
    "Incidents-topic partitions this worker's merge stage owns.",
)
OUTBOX_PARKED = Gauge(
    "xueliang_outbox_parked",
    "Outbox rows Kafka refused for good (too large, topic not authorised, not serialisable), parked until re-sent.",
)
PARKED_TOTAL = Counter(
    "xueliang_dispatch_parked_total",
    "Outbox rows parked by the dispatcher since start.",
)
RETENTION_DELETED = Counter(
    "xueliang_retention_deleted_total",
    "Rows or files removed by retention, by store (outbox, evidence, deadletters, audit, console) and reason (age, size).",
    ["store", "reason"],
)
DISK_FREE = Gauge(
    "xueliang_disk_free_bytes",
    "Free bytes on the filesystem of each guarded path (data, outbox, evidence).",
    ["path"],
)
DISK_LEVEL = Gauge(
    "xueliang_disk_guard_level",
    "Disk guard: 0 ok, 1 new evidence refused, 2 new events held in memory too.",
)
EVIDENCE_REFUSED = Counter(
    "xueliang_evidence_refused_total",
    "Evidence files not written, by reason (disk_guard, write_failed); their events went out without them.",
    ["reason"],
)
EVENTS_HELD = Gauge(
    "xueliang_outbox_held",
    "Events held in memory because the outbox cannot be written (disk guard or write error); written when it can.",
)
EVENTS_DROPPED = Counter(
    "xueliang_outbox_held_dropped_total",
    "Held events dropped because the in-memory hold was full while the outbox could not be written.",
)
LOGIN_FAILURES = Counter(
    "xueliang_login_failures_total",
    "Failed authentications (bad token at /login or as a bearer token), by where (login, bearer).",
    ["where"],
)
LOGIN_LIMITED = Counter(
    "xueliang_login_rate_limited_total",
    "Authentication attempts refused with 429 because of recent failures, by scope (client, account).",
    ["scope"],
)
RESTART_INCIDENTS = Counter(
    "xueliang_restart_incidents_total",
    "Incidents found open in the outbox at start, by what became of them: carried (given to their camera or "
    "sensor to go on under their id, or clear with a reason) or cleared (camera, sensor or rule no longer configured).",
    ["outcome"])
FEEDBACK_ELSEWHERE = Counter(
    "xueliang_feedback_verify_elsewhere_total",
    "Cluster mode: verify requests for a camera another worker runs, watched here in case the camera moves here.")

# Cluster membership: camera ownership over Kafka (bridge/kafka/camera_ownership.py).
CLUSTER_CAMERAS = Gauge("xueliang_cluster_cameras", "Cameras this worker runs by the consumer group's assignment.")
CLUSTER_GENERATION = Gauge("xueliang_cluster_generation", "The worker group generation this worker holds.")
CLUSTER_REBALANCES = Counter("xueliang_cluster_rebalances_total", "Rebalances in which this worker gave up its cameras.")
CLUSTER_FENCED_SELF = Counter(
    "xueliang_cluster_fenced_total",
    "Times this worker stopped its cameras because the group refused its generation (it was replaced).")
CLUSTER_UNPROVEN = Gauge(
    "xueliang_cluster_unproven_seconds",
    "Seconds since this worker last proved its group generation, while Kafka does not answer (0 when it does).")
CLUSTER_ADOPTED = Counter(
    "xueliang_cluster_adopted_incidents_total", "Open incidents taken over from a camera's previous owner.")
