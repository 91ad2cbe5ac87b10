"""Acceptance: the real model on the real table clip opens one incident per qualifying stay.

Stays come from ../shared/fixtures/video/ATTRIBUTION.md. An incident must open within 3 s of
(stay start + min dwell) and clear after the person leaves.
"""
from __future__ import annotations

import hashlib
import io
import json
from datetime import datetime

import pytest

from tests.helpers import DATA_DIR, REPO, TABLE_STAYS, xueliang
from xueliang.config import load_config
from xueliang.replay import replay

CONFIG = REPO / "configs" / "examples" / "table-dwell.yaml"


def events_of(lines: str) -> list[dict]:
    return [json.loads(line) for line in lines.splitlines() if line.strip()]


def check_incidents(events: list[dict], stays: list[tuple[float, float]], min_dwell: float) -> None:
    opened = [e for e in events if e["status"] == "opened"]
    cleared = [e for e in events if e["status"] == "cleared"]
    assert len(opened) == len(stays), [e["source"]["media_time_s"] for e in opened]
    assert len(cleared) == len(stays), [e["source"]["media_time_s"] for e in cleared]
    for ev, (start, end) in zip(opened, stays):
        t = ev["source"]["media_time_s"]
        assert abs(t - (start + min_dwell)) <= 3.0, f"opened at {t}, stay {start}-{end}"
    by_incident = {e["incident_id"]: e for e in opened}
    for ev, (start, end) in zip(cleared, stays):
        assert ev["incident_id"] in by_incident
        assert end <= ev["source"]["media_time_s"] <= end + 8.0
        assert ev["source"]["media_time_s"] > by_incident[ev["incident_id"]]["source"]["media_time_s"]
    assert len(by_incident) == len(stays)


def test_replay_cli_six_second_dwell_gives_six_incidents():
    res = xueliang("replay", "-c", str(CONFIG), "--camera", "table", "--start", "2026-11-22T08:00:00+08:00",
                   timeout=600)
    assert res.returncode == 0, res.stderr
    events = events_of(res.stdout)
    check_incidents(events, TABLE_STAYS, 6)
    first = events[0]
    assert first["grid"]["code"] == "990001002002001"
    assert first["category"]["code"] == "market.road-occupation"
    assert first["source"] == {"kind": "video", "camera_id": "table", "sensor_id": None, "zone": "table",
                               "media_time_s": first["source"]["media_time_s"], "worker": None, "generation": None}
    occurred = datetime.fromisoformat(first["occurred_at"])
    assert occurred.utcoffset().total_seconds() == 8 * 3600
    assert (occurred - datetime.fromisoformat("2026-11-22T08:00:00+08:00")).total_seconds() == pytest.approx(
        first["source"]["media_time_s"], abs=0.01)
    evidence = first["evidence"]
    assert evidence["snapshot"].startswith("/evidence/") and evidence["crop"].startswith("/evidence/")
    assert len(evidence["bbox"]) == 4
    for kind in ("snapshot", "crop"):
        stored = DATA_DIR / "evidence" / evidence[kind].rsplit("/", 1)[1]
        assert hashlib.sha256(stored.read_bytes()).hexdigest() == evidence["sha256"][kind]
    assert first["detector"]["model"] == "yolov8n" and first["detector"]["rule"] == "stay-at-table"


def test_replay_fifteen_second_dwell_gives_only_the_long_stays():
    cfg = load_config(CONFIG)
    cfg.cameras[0].rules[0].min_dwell_s = 15
    out = io.StringIO()
    replay(cfg, "table", out)
    long_stays = [TABLE_STAYS[i] for i in (1, 2, 4)]  # the 2nd, 3rd and 5th stays last 15 s or more
    check_incidents(events_of(out.getvalue()), long_stays, 15)
