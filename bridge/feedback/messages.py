"""Feedback from the dispatch platform: the messages, and what they mean for reporting.

Three message types arrive on the feedback topic (JSON, documented in docs/feedback.schema.json
and docs/asyncapi.yaml):

- `work_order_closed`: the platform handled the incident. Re-reporting the same problem from the
  same source (camera or sensor, zone, rule, category) is suppressed for `suppress_s` seconds
  from the message's time: new incidents opened from those sources meanwhile are kept in the
  outbox, marked suppressed, and not sent.
- `verify_request`: the platform asks whether the incident is still there (核查); the service
  looks again and answers with a `verified` event.
- `work_order_state`: the incident's work order moved on (accepted, dispatched, handled, verified,
  closed, returned); the console's clocks and lights follow it (`bridge.http.console.clocks`). A
  `work_order_closed` counts as the state `closed` too.

Fields other than these are ignored, so the platform may add its own (a work order number).
Everything here is pure: the clock comes in as arguments.
"""
from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from bridge.events.model import NOT_LIFECYCLE, Event


class _Message(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class WorkOrderClosed(_Message):
    type: Literal["work_order_closed"]
    incident_id: str = Field(min_length=1, description="`incident_id` of the event the work order was opened for.")
    suppress_s: float | None = Field(
        None, gt=0, description="Suppress re-reporting for this many seconds from the message's time; "
        "default: the service's `feedback.suppress_s`.")


class VerifyRequest(_Message):
    type: Literal["verify_request"]
    incident_id: str = Field(min_length=1, description="`incident_id` of the incident to look at again.")
    request_id: str = Field(min_length=1, description="The platform's id for this request; the `verified` "
                            "event carries it back in `verification.request_id`.")


class WorkOrderState(_Message):
    type: Literal["work_order_state"]
    incident_id: str = Field(min_length=1, description="`incident_id` of the event the work order was opened for.")
    state: Literal["accepted", "dispatched", "handled", "verified", "closed", "returned"] = Field(
        description="accepted (受理), dispatched (派遣), handled (处置), verified (核查通过), closed (结案), "
        "returned (退回: back for rework; the handling clock starts again).")
    at: AwareDatetime | None = Field(None, description="When the state changed, with its UTC offset; default: "
                                     "the message's Kafka timestamp.")
    work_order_id: str | None = Field(None, max_length=100, description="The platform's work-order number.")


Message = WorkOrderClosed | VerifyRequest | WorkOrderState
FeedbackMessage = Annotated[Message, Field(discriminator="type")]
_ADAPTER: TypeAdapter[Message] = TypeAdapter(FeedbackMessage)


class FeedbackError(ValueError):
    """A feedback message that cannot be acted on; the text says what is wrong with it."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason  # short label for the metric: invalid_json, invalid_message, ...
        super().__init__(detail)


def parse_feedback(raw: bytes | None) -> Message:
    if raw is None:
        raise FeedbackError("invalid_json", "empty message (null value)")
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FeedbackError("invalid_json", f"not JSON: {exc}; starts with {raw[:80]!r}") from None
    try:
        return _ADAPTER.validate_python(doc)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(message)'}: {e['msg']}" for e in exc.errors())
        raise FeedbackError("invalid_message", f"not a feedback message: {problems}") from None


def feedback_json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of a feedback message."""
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": "https://xueliang-ingest.invalid/schemas/feedback-v1.json",
            "title": "FeedbackMessage", **_ADAPTER.json_schema()}


# ---------------------------------------------------------------- suppression

def suppress_key(source: str, zone: str | None, rule: str | None, category: str) -> str:
    return json.dumps([source, zone, rule, category], ensure_ascii=False)


def keys_of_stored(event: dict[str, Any]) -> list[str]:
    """Every source key of a stored incident event: all its merged sources, or its one source."""
    cat = event["category"]["code"]
    sources = event.get("sources") or [{**event["source"], "rule": event["detector"]["rule"]}]
    return [suppress_key(_name(s), s.get("zone"), s.get("rule"), cat) for s in sources]


def key_of(ev: Event) -> str:
    """The key of the source reporting this event."""
    return suppress_key(_name(ev.source.model_dump()), ev.source.zone, ev.detector.rule, ev.category.code)


def _name(source: dict[str, Any]) -> str:
    return f"camera:{source['camera_id']}" if source.get("camera_id") else f"sensor:{source.get('sensor_id')}"


class SuppressionGate:
    """Decides which events are kept back. Keyed windows come from closed work orders; an
    incident whose `opened` was kept back stays kept back (its updates and clear) until it clears,
    so the platform never sees half an incident."""

    def __init__(self) -> None:
        self.until: dict[str, float] = {}
        self._incidents: dict[str, str] = {}  # incident id -> reason, while it is open

    def add(self, keys: list[str], until: float) -> None:
        for k in keys:
            self.until[k] = max(until, self.until.get(k, until))

    def hold(self, incident_id: str, reason: str) -> None:
        """Keep back the rest of an open incident whose `opened` was kept back (after a restart)."""
        self._incidents[incident_id] = reason

    def check(self, ev: Event, now: float) -> str | None:
        """The reason `ev` must not be sent, or None."""
        if ev.status in NOT_LIFECYCLE:
            return None
        reason = self._incidents.get(ev.incident_id)
        if reason is None and ev.status == "opened":
            until = self.until.get(key_of(ev))
            if until is not None and now < until:
                reason = f"work order closed; re-reporting suppressed until {until:.0f}"
                self._incidents[ev.incident_id] = reason
        if reason is not None and ev.status == "cleared":
            del self._incidents[ev.incident_id]
        self._prune(now)
        return reason

    def _prune(self, now: float) -> None:
        for k in [k for k, u in self.until.items() if u <= now]:
            del self.until[k]
