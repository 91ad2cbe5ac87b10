"""An analysis rate that falls under load must not turn one occurrence into two.

The table clip replayed at its configured 5 frames/s, but with frames dropped as a loaded worker
drops them: irregular gaps of 0.5 to 4 s between analysed frames (about 0.6 frames/s on average).
The six stays at the table are still six incidents, each opened once and cleared once."""
from __future__ import annotations

import io
import itertools
import json

import xueliang.replay as replay_mod
from tests.helpers import DATA_DIR, REPO, TABLE_STAYS
from xueliang.config import load_config
from xueliang.replay import replay

# Seconds from one analysed frame to the next, in turn (a fixed, irregular pattern).
GAPS = [0.5, 3.0, 0.5, 1.0, 4.0, 0.5, 2.5, 0.5, 0.5, 3.5, 1.5, 0.5, 2.0, 4.0, 1.0, 0.5, 3.0]
MAX_GAP = max(GAPS)


def dropping(iter_frames):
    """`iter_frames` that passes only the frames the gap pattern reaches: the rest are dropped."""
    def frames(*args, **kw):
        gaps, due = itertools.cycle(GAPS), 0.0
        for frame in iter_frames(*args, **kw):
            if frame.media_time_s >= due - 1e-6:
                due = frame.media_time_s + next(gaps)
                yield frame
    return frames


def test_dropped_frames_keep_six_stays_six_incidents(monkeypatch):
    cfg = load_config(REPO / "configs" / "examples" / "table-dwell.yaml")
    cfg.data_dir = DATA_DIR
    cfg.cameras[0].clip.enabled = False
    monkeypatch.setattr(replay_mod, "iter_frames", dropping(replay_mod.iter_frames))
    out = io.StringIO()
    stats = replay(cfg, "table", out)
    assert stats.frames < 139.4 / 1.5  # the gaps were real: far fewer frames than 5 per second
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    incidents: dict[str, list[tuple[str, float]]] = {}
    for e in events:
        incidents.setdefault(e["incident_id"], []).append((e["status"], e["source"]["media_time_s"]))
    spans = []
    for iid, evs in incidents.items():
        statuses = [s for s, _ in evs if s != "updated"]
        assert statuses == ["opened", "cleared"], (iid, evs)
        spans.append((evs[0][1], evs[-1][1]))
    spans.sort()
    assert len(spans) == len(TABLE_STAYS), spans
    for (opened, cleared), (start, end) in zip(spans, TABLE_STAYS):
        # Opened once she stood 6 s (later by at most a gap); cleared after she left.
        assert start + 6 - 1.0 <= opened <= start + 6 + 3.0 + MAX_GAP, (spans, TABLE_STAYS)
        assert end - 1.0 <= cleared <= end + 8.0 + MAX_GAP, (spans, TABLE_STAYS)
