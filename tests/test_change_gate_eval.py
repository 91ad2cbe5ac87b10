"""The change gate must not change what the rules decide (issue 13).

`xueliang eval` on every labelled fixture clip gives the same true and false positives, misses
and opening delays with the gate on as off; the table clip replayed at its configured 5 frames/s
gives its 6 stays, opened and cleared at the same media times (within one analysed frame),
at 2 analysed frames/s.
Slow by nature: each clip goes through the real model twice, once with the gate off.
"""
from __future__ import annotations

import io
import json

import pytest

from tests.helpers import DATA_DIR, REPO, TABLE_STAYS
from xueliang.config import load_config
from detectors.evaluation import load_labels
from xueliang.backtest_wiring import evaluate
from xueliang.replay import replay


def gate(cfg, on: bool):
    cams = [c.model_copy(update={"gate": c.gate.model_copy(update={"enabled": on})}) for c in cfg.cameras]
    return cfg.model_copy(update={"cameras": cams})


@pytest.mark.timeout(1500)
def test_eval_gives_the_same_incidents_with_the_gate_on_and_off():
    cfg = load_config(REPO / "configs" / "examples" / "fixtures.yaml")
    cfg.data_dir = DATA_DIR
    labels = load_labels(REPO / "configs" / "examples" / "labels" / "fixtures.yaml")
    on, off = evaluate(gate(cfg, True), labels), evaluate(gate(cfg, False), labels)
    assert on.keys() == off.keys()
    frame_s = 1.0 / min(c.analysis_fps for c in cfg.cameras)
    for rule in off:
        a, b = on[rule], off[rule]
        assert (a.tp, a.fp, a.fn) == (b.tp, b.fp, b.fn), (rule, a, b)
        assert len(a.delays) == len(b.delays) and all(abs(x - y) <= frame_s + 1e-6 for x, y in zip(a.delays, b.delays)), \
            (rule, a.delays, b.delays)
    assert sum(s.tp for s in on.values()) == 14  # six stays twice over, two bottles left behind


def spans(cfg) -> list[tuple[float, float]]:
    out = io.StringIO()
    replay(cfg, "table", out)
    incidents: dict[str, list[tuple[str, float]]] = {}
    for line in out.getvalue().splitlines():
        e = json.loads(line)
        if e["status"] != "updated":
            incidents.setdefault(e["incident_id"], []).append((e["status"], e["source"]["media_time_s"]))
    assert all([s for s, _ in evs] == ["opened", "cleared"] for evs in incidents.values()), incidents
    return sorted((evs[0][1], evs[1][1]) for evs in incidents.values())


@pytest.mark.timeout(1500)
def test_table_replay_keeps_its_six_stays_at_the_same_times_with_the_gate():
    cfg = load_config(REPO / "configs" / "examples" / "table-dwell.yaml")
    cfg.data_dir = DATA_DIR
    cfg.cameras[0].clip.enabled = False
    # At 2 analysed frames/s, not the example's 5: the gate-off replay alone took ~4 of the suite's
    # minutes at 5, and "the same times within one analysed frame" is as strict per frame at 2.
    cfg.cameras[0].analysis_fps = 2.0
    on, off = spans(gate(cfg, True)), spans(gate(cfg, False))
    assert len(on) == len(off) == len(TABLE_STAYS), (on, off)
    frame_s = 1.0 / cfg.cameras[0].analysis_fps
    for (o1, c1), (o2, c2) in zip(on, off):
        assert abs(o1 - o2) <= frame_s + 1e-6 and abs(c1 - c2) <= frame_s + 1e-6, (on, off)
