"""The tuning bench (bridge/http/console/tuning_bench.py) wired with the root's steps: a camera as it
would run with an edited tuning, validated by the config models and their cross-checks; the replay
its backtests run."""
from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from pydantic import ValidationError

from bridge.http.console import tuning_bench
from bridge.http.console.tuning_routes import CameraTuning, Problems
from bridge.store.audit import ConsoleDb
from detectors.detector_config import RULE_TYPES
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
