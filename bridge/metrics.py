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
