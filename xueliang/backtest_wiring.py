"""The backtests wired with the root's replay: the tuning bench (bridge/http/console/tuning_bench.py)
with its steps (a camera as it would run with an edited tuning, validated by the config models and
their cross-checks; the replay), and `xueliang eval`'s scoring of labelled clips
(detectors/evaluation.py) with each clip's replay."""
from __future__ import annotations

import io
import json
import re
from collections.abc import Awaitable, Callable

from pydantic import ValidationError

from bridge.http.console import tuning_bench
from bridge.http.console.tuning_routes import CameraTuning, Problems
from bridge.store.audit import ConsoleDb
from detectors.detector_config import RULE_TYPES
from detectors.evaluation import LabelFile, LabelledClip, RuleScore, score_clips
from xueliang.config import CameraConfig, ServiceConfig, cross_check
from xueliang.replay import replay
from xueliang.wiring import build_core

_PATH = re.compile(r"\.?([A-Za-z_][A-Za-z0-9_-]*)|\[(\d+)\]")


def _tuple_path(path: str) -> tuple:
    return tuple(int(i) if i else name for name, i in _PATH.findall(path))


def candidate(cfg: ServiceConfig, camera_id: str, tuning: CameraTuning) -> CameraConfig:
    """The camera as it would run with `tuning`; Problems (field path, message) if it cannot."""
    index = [c.id for c in cfg.cameras].index(camera_id)
    doc = cfg.cameras[index].model_dump() | tuning.model_dump(include=set(tuning_bench.EDITABLE))
    try:
        cam = CameraConfig.model_validate(doc)
    except ValidationError as exc:
        raise Problems([(tuple(p for p in e["loc"] if p not in RULE_TYPES), e["msg"].removeprefix("Value error, "))
                        for e in exc.errors()]) from None
    trial = cfg.model_copy(update={"cameras": [*cfg.cameras[:index], cam, *cfg.cameras[index + 1:]]})
    prefix = f"cameras[{index}]."
    problems = [(_tuple_path(loc.removeprefix(prefix)), msg) for loc, msg in cross_check(trial)
                if loc.startswith(prefix)]
    if problems:
        raise Problems(problems)
    return cam


STEPS = tuning_bench.BenchSteps(candidate=candidate, replay=replay, build_core=build_core)


def apply_saved(cfg: ServiceConfig, db: ConsoleDb) -> dict[str, int]:
    """At start-up: each camera runs its latest saved version (if it still validates)."""
    return tuning_bench.apply_saved(cfg, db, candidate)


class Bench(tuning_bench.Bench):
    """The bench over the live `ServiceConfig`, with the root's steps."""

    def __init__(self, cfg: ServiceConfig, db: ConsoleDb, apply: Callable[[CameraConfig], Awaitable[None]],
                 running: dict[str, int] | None = None) -> None:
        super().__init__(cfg, db, apply, running, steps=STEPS)


def evaluate(cfg: ServiceConfig, labels: LabelFile) -> dict[str, RuleScore]:
    """Each labelled clip replayed through the live code path, every rule of its camera scored."""
    core = build_core(cfg)

    def events(clip: LabelledClip) -> list[dict]:
        out = io.StringIO()
        replay(cfg, clip.camera, out, source=clip.source, core=core)
        return [json.loads(line) for line in out.getvalue().splitlines()]

    return score_clips(labels, cfg.camera, events)
