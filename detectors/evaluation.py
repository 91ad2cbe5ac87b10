"""Scoring rules on labelled clips (`xueliang eval`): the label file, matching opened incidents to
labelled occurrences, the scores and their tables — the backtest before a change. The replay of a
clip is the composition root's; it is handed in (`score_clips`).

Label file (YAML), paths relative to it:

    clips:
      - camera: table                 # camera id in the config: its zones and rules apply
        source: ../clip.mp4           # optional; default: the camera's url
        expected:                     # real occurrences, in seconds from the start of the clip
          - {rule: stay-at-table, start: 7.5, end: 18.5, zone: table}   # zone optional

An opened incident matches an occurrence of the same rule (and zone, if given) when it opens
between the occurrence's start and its end plus `slack_s`; each occurrence takes at most one
incident. Unmatched incidents are false positives (a second incident for the same occurrence
is one too), unmatched occurrences are misses. Opening delay = open time - occurrence start.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from statistics import mean
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from detectors.detector_config import MAIN_MODEL_PREFIX, class_rules
from ingest.config_problems import ConfigError, field_path


class Occurrence(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rule: str = Field(description="Rule id that should fire.")
    start: float = Field(ge=0, description="Seconds from the clip start when the occurrence begins.")
    end: float = Field(ge=0, description="Seconds from the clip start when it ends.")
    zone: str | None = Field(None, description="Zone it happens in; any zone of the rule when omitted.")


class LabelledClip(BaseModel):
    model_config = ConfigDict(extra="forbid")
    camera: str = Field(description="Camera id in the service config.")
    source: str | None = Field(None, description="Clip to replay; default: the camera's url.")
    expected: list[Occurrence] = Field(default_factory=list, description="Real occurrences in the clip.")


class LabelFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    slack_s: float = Field(5.0, ge=0, description="How long after an occurrence ends an opening still matches it.")
    clips: list[LabelledClip] = Field(min_length=1, description="Labelled clips.")


@dataclass
class RuleScore:
    rule: str
    tp: int = 0
    fp: int = 0
    fn: int = 0
    delays: list[float] = field(default_factory=list)

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    def as_dict(self) -> dict:
        d = asdict(self)
        d.update(precision=round(self.precision, 3), recall=round(self.recall, 3),
                 mean_delay_s=round(mean(self.delays), 2) if self.delays else None,
                 max_delay_s=round(max(self.delays), 2) if self.delays else None)
        d["delays"] = [round(x, 2) for x in self.delays]
        return d


def load_labels(path: Path) -> LabelFile:
    """The label file, its clips' paths made absolute; ConfigError naming every problem."""
    try:
        labels = LabelFile.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except ValidationError as exc:
        raise ConfigError(path, [(field_path(e["loc"]), e["msg"]) for e in exc.errors()]) from None
    for clip in labels.clips:
        if clip.source and not Path(clip.source).is_absolute():
            clip.source = str((path.parent / clip.source).resolve())
    return labels


def match(opened: list[dict], expected: list[Occurrence], slack_s: float, scores: dict[str, RuleScore]) -> None:
    """Greedy in time order: each incident takes the earliest unmatched occurrence it fits."""
    taken: set[int] = set()
    for ev in sorted(opened, key=lambda e: e["source"]["media_time_s"]):
        rule, t = ev["detector"]["rule"], ev["source"]["media_time_s"]
        score = scores.setdefault(rule, RuleScore(rule))
        for i, occ in enumerate(expected):
            if i in taken or occ.rule != rule or (occ.zone and occ.zone != ev["source"]["zone"]):
                continue
            if occ.start <= t <= occ.end + slack_s:
                taken.add(i)
                score.tp += 1
                score.delays.append(t - occ.start)
                break
        else:
            score.fp += 1
    for i, occ in enumerate(expected):
        if i not in taken:
            scores.setdefault(occ.rule, RuleScore(occ.rule)).fn += 1


def score_clips(labels: LabelFile, camera: Callable[[str], Any],
                replay: Callable[[LabelledClip], list[dict]]) -> dict[str, RuleScore]:
    """Every rule of the labelled cameras (`camera(id)`: its config) scored on the clips; `replay(clip)`
    gives the events the replay of a clip produced."""
    scores: dict[str, RuleScore] = {}
    for c in labels.clips:
        cam = camera(c.camera)
        scores.update({r.id: RuleScore(r.id) for r in [*cam.rules, *class_rules(MAIN_MODEL_PREFIX, cam.classes)]})
    for clip in labels.clips:
        events = replay(clip)
        match([e for e in events if e["status"] == "opened"], clip.expected, labels.slack_s, scores)
    return scores


def table(scores: dict[str, RuleScore]) -> str:
    rows = ["rule                     TP  FP  FN  precision  recall  mean delay s  max delay s"]
    for s in scores.values():
        d = s.as_dict()
        rows.append(f"{s.rule:<24} {s.tp:>3} {s.fp:>3} {s.fn:>3}  {d['precision']:>9.3f}  {d['recall']:>6.3f}"
                    f"  {d['mean_delay_s'] if d['mean_delay_s'] is not None else '-':>12}"
                    f"  {d['max_delay_s'] if d['max_delay_s'] is not None else '-':>11}")
    return "\n".join(rows)


def compare_table(results: dict[str, dict[str, RuleScore]], sha256: dict[str, str]) -> str:
    """One block per rule, one row per model, side by side."""
    width = max(12, *(len(m) for m in results))
    rows = ["models: " + ", ".join(f"{m} (sha256 {sha256.get(m, '?')[:12]})" for m in results),
            f"{'rule':<24} {'model':<{width}}  TP  FP  FN  precision  recall  mean delay s  max delay s"]
    rules = list(dict.fromkeys(r for scores in results.values() for r in scores))
    for rule in rules:
        for i, (model, scores) in enumerate(results.items()):
            s = scores.get(rule, RuleScore(rule))
            d = s.as_dict()
            rows.append(f"{rule if i == 0 else '':<24} {model:<{width}} {s.tp:>3} {s.fp:>3} {s.fn:>3}  "
                        f"{d['precision']:>9.3f}  {d['recall']:>6.3f}"
                        f"  {d['mean_delay_s'] if d['mean_delay_s'] is not None else '-':>12}"
                        f"  {d['max_delay_s'] if d['max_delay_s'] is not None else '-':>11}")
    return "\n".join(rows)
