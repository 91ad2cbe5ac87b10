"""What a rule reports: a condition that holds now, with the evidence for it."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Condition:
    rule_id: str
    zone: str | None
    since: float  # when the subject started to satisfy the rule (e.g. entered the zone)
    score: float  # confidence in [0, 1]
    bbox: tuple[float, float, float, float] | None  # normalised box of the main subject
    track_ids: tuple[int, ...] = ()
    # For rules that report objects one by one (a dumped bag), the object's track id: each
    # subject is its own incident. None for rules that report the zone as a whole.
    subject: int | None = None
