"""A camera's new owner carries on the incidents its previous owner left open (cluster handover)."""
from __future__ import annotations

from detectors.lifecycle import Lifecycle
from detectors.rules.condition import Condition


def cond(since: float, subject: int | None = None) -> Condition:
    return Condition("r", "z", since, 0.9, (0.1, 0.1, 0.2, 0.2), subject=subject)


def adopted(subject: int | None = None) -> Lifecycle:
    lc = Lifecycle("cam", "r", update_interval_s=30, grace_s=2)
    lc.adopt("X", "z", subject, 50.0, cond(45.0, subject), now=100.0, hold_s=10.0, claim_s=3.0)
    return lc


def test_seen_again_from_the_takeover_on_it_goes_on_under_its_id():
    lc = adopted()
    assert lc.step([], 101.0) == []
    changes = lc.step([cond(101.5)], 104.0)  # in view since 101.5 <= 100 + 3
    assert [(c.status, c.incident_id, c.opened_at) for c in changes] == [("updated", "X", 50.0)]
    assert [c.status for c in lc.step([], 105.0) + lc.step([], 107.0)] == ["cleared"]  # then its own grace


def test_a_subject_that_arrived_later_is_a_new_occurrence():
    lc = adopted()
    assert lc.step([], 100.5) == []  # the first frame here: nobody in view
    changes = lc.step([cond(104.0)], 106.0)  # entered 4 s after the takeover
    assert [(c.status, c.incident_id) for c in changes][0] == ("cleared", "X")
    assert changes[1].status == "opened" and changes[1].incident_id != "X"


def test_unseen_it_clears_after_the_hold():
    lc = adopted()
    assert lc.step([], 100.0) == []
    assert lc.step([], 109.0) == []
    assert [(c.status, c.incident_id) for c in lc.step([], 110.0)] == [("cleared", "X")]


def test_object_rules_any_object_in_the_zone_claims_it():
    lc = adopted(subject=7)  # the old owner's track id means nothing here
    changes = lc.step([cond(100.5, subject=42)], 102.0)
    assert [(c.status, c.incident_id) for c in changes] == [("updated", "X")]
    assert list(lc.active) == [("z", 42)]


def test_under_load_the_clock_starts_at_the_first_frame_analysed_after_the_takeover():
    # The new owner's first frame of the camera comes 6 s after the takeover (frames seconds apart
    # on a loaded worker): whoever it shows was in view at the takeover, and the hold runs from it.
    lc = adopted()
    assert lc.step([], 106.0) == []
    assert lc.step([], 115.0) == []  # 9 s into the hold, counted from 106
    changes = lc.step([cond(106.0)], 112.0 + 3.5)  # the person first seen at 106, held 6 s by the rule
    assert [(c.status, c.incident_id) for c in changes] == [("updated", "X")]


def test_under_load_unseen_it_clears_a_hold_after_the_first_frame():
    lc = adopted()
    assert lc.step([], 106.0) == []
    assert lc.step([], 115.9) == []
    assert [(c.status, c.incident_id) for c in lc.step([], 116.0)] == [("cleared", "X")]
