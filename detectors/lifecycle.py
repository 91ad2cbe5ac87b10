"""Incident lifecycle: conditions over time become opened / updated / cleared changes.

One active incident per (camera, zone, rule), or per object for rules that report objects one by
one (the condition's `subject`). It opens the first time its condition holds (the rule already
waited for its duration), is updated at most every `update_interval_s` carrying the best
evidence so far, and clears once the condition has been absent for `grace_s` and in
`min_absent_steps` steps in a row (a long gap between two analysed frames under load is not
an absence). After a clear, `cooldown_s` keeps a flickering object from opening a new incident at once.

An incident whose condition was last reported with a track that is now occluded (a stationary
object out of sight, held by the tracker: see `detectors.occlusion`) does not clear while it
stays occluded: the rules cannot see it, but it has not left. When it comes back under its
track the condition holds again and the incident goes on; if it never does, the hold ends
(`hold_s`) and the incident clears then.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Literal

from detectors.rules.condition import Condition

_NAMESPACE = uuid.UUID("6f1b3c2e-5a8d-4e7f-9b0c-1d2e3f405162")


@dataclass(frozen=True, slots=True)
class IncidentChange:
    status: Literal["opened", "updated", "cleared"]
    incident_id: str
    camera_id: str
    rule_id: str
    zone: str | None
    at: float  # clock time of the change (media time in replay, Unix time live)
    opened_at: float
    condition: Condition  # for `cleared`, the last condition seen
    reason: str | None = None  # `cleared` not by its condition ending: why (e.g. not seen again after a restart)


@dataclass
class _Active:
    incident_id: str
    opened_at: float
    last_true: float
    last_emit: float
    best: Condition
    latest: Condition
    best_changed: bool = False
    absent: int = 0  # steps in a row without the condition
    adopted: bool = False  # taken over from a camera's previous owner and not seen here yet
    claim_until: float = 0.0  # adopted: a subject seen from before this is the same occurrence
    carried: str = ""  # adopted: what carried it over ("restart", "handover"), for the reason of its clear
    hold_s: float = 0.0  # adopted: how long it waits to be seen again
    waiting_since: float | None = None  # adopted: when it was taken over, until the first frame here


class Lifecycle:
    def __init__(self, camera_id: str, rule_id: str, *, update_interval_s: float, grace_s: float,
                 cooldown_s: float = 0.0, min_absent_steps: int = 1) -> None:
        self.camera_id = camera_id
        self.min_absent_steps = min_absent_steps
        self.rule_id = rule_id
        self.update_interval_s = update_interval_s
        self.grace_s = grace_s
        self.cooldown_s = cooldown_s
        self.active: dict[tuple[str | None, int | None], _Active] = {}
        self._cleared_at: dict[str | None, float] = {}  # per zone: cooldown applies to the zone

    def step(self, conditions: list[Condition], now: float, occluded: set[int] | frozenset[int] = frozenset()
             ) -> list[IncidentChange]:
        """`occluded`: track ids out of sight but held (see the module's doc)."""
        changes: list[IncidentChange] = []
        for act in self.active.values():
            if act.waiting_since is not None:
                # An adopted incident's clock starts at the first frame analysed here: under load
                # that frame may come seconds after the takeover, and what it shows was in view then.
                late = max(0.0, now - act.waiting_since)
                act.claim_until += late
                act.last_true += late
                act.waiting_since = None
        holding = {(c.zone, c.subject): c for c in conditions}
        for key, cond in holding.items():
            zone = key[0]
            act = self.active.get(key) or self._claim(key)
            if act is not None and act.adopted:
                if cond.since <= act.claim_until:  # in view since the takeover: the same incident goes on
                    act.adopted, act.last_emit = False, -1e18
                else:  # it arrived later: a new occurrence; the one handed over is over
                    del self.active[key]
                    why = (f"{act.carried}: what is in view now arrived after the {act.carried}; "
                           "it is reported as a new incident")
                    changes.append(self._change("cleared", act, zone, now, act.latest, why))
                    act = None
            if act is None:
                if now - self._cleared_at.get(zone, -1e18) < self.cooldown_s:
                    continue
                iid = str(uuid.uuid5(_NAMESPACE, f"{self.camera_id}|{zone}|{self.rule_id}|{key[1]}|{now:.3f}"))
                self.active[key] = _Active(iid, now, now, now, cond, cond)
                changes.append(self._change("opened", self.active[key], zone, now, cond))
                continue
            act.last_true, act.latest, act.absent = now, cond, 0
            if cond.score > act.best.score:
                act.best, act.best_changed = cond, True
            if now - act.last_emit >= self.update_interval_s:
                act.last_emit = now
                changes.append(self._change("updated", act, zone, now, act.best if act.best_changed else cond))
                act.best_changed = False
        for key in [k for k in self.active if k not in holding]:
            act = self.active[key]
            act.absent += 1
            if occluded and not occluded.isdisjoint(act.latest.track_ids):
                continue
            if now - act.last_true >= self.grace_s and act.absent >= self.min_absent_steps:
                del self.active[key]
                self._cleared_at[key[0]] = now
                why = (f"{act.carried}: its condition was not seen again within {act.hold_s:.0f} s"
                       if act.adopted else None)
                changes.append(self._change("cleared", act, key[0], now, act.latest, why))
        return changes

    def adopt(self, incident_id: str, zone: str | None, subject: int | None, opened_at: float,
              condition: Condition, now: float, hold_s: float, claim_s: float, carried: str = "handover") -> None:
        """Carry on an incident a camera's previous owner opened (cluster handover), or this
        process opened before a restart (`carried` names which, for the reason of its clear).

        It stays open for `hold_s` waiting for its condition. A condition whose subject has been
        in view since at most `claim_s` after the takeover (both counted from the first frame
        analysed after it, which under load may come seconds later) is the same occurrence and carries the
        incident on under its id (object ids differ between owners, so any object in the same zone
        may claim it). One that started later is a new occurrence: the handed-over incident clears
        and a new one opens. Unseen, it clears after `hold_s`. So a handover neither drops an
        incident nor reports one occurrence twice.
        """
        act = _Active(incident_id, opened_at, now + hold_s - self.grace_s, now, condition, condition,
                      adopted=True, claim_until=now + claim_s, carried=carried, hold_s=hold_s, waiting_since=now)
        self.active[(zone, subject)] = act

    def _claim(self, key: tuple[str | None, int | None]) -> _Active | None:
        for k, act in self.active.items():
            if act.adopted and k[0] == key[0]:
                del self.active[k]
                self.active[key] = act
                return act
        return None

    def _change(self, status, act: _Active, zone, now: float, cond: Condition,
                reason: str | None = None) -> IncidentChange:
        return IncidentChange(status, act.incident_id, self.camera_id, self.rule_id, zone, now, act.opened_at, cond,
                              reason)


