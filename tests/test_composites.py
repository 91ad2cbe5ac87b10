"""Dumping and occupation on composites of real footage with known ground truth, scored by the
same `xueliang eval` matching operators use.

- dumping: in the table room, a real bottle (cut from the bottle clip) appears at the feet of the
  first visitor as they walk out (13.8 s) and stays; a second bottle appears at 16 s with nobody
  near it. Only the first is dumped.
- occupation: three real bottles laid out on the floor beside the table at 5 s, as goods, while
  people stand at the table. A control clip without them must stay silent.
"""
from __future__ import annotations

import pytest
import yaml

from tests.composites import TABLE, Paste, bottle_patch, make_composite
from tests.helpers import DATA_DIR, REPO
from xueliang.config import load_config
from detectors.evaluation import LabelFile
from xueliang.backtest_wiring import evaluate

FLOOR = [[0, 0.6], [1, 0.6], [1, 1], [0, 1]]


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("composites")
    dump = make_composite(TABLE, d / "dump.mp4", 5.0, 35.0, [
        Paste(bottle_patch(0), (0.86, 0.97), 0.22, appear_s=13.8),   # dropped by the visitor walking out
        Paste(bottle_patch(2), (0.10, 0.97), 0.22, appear_s=16.0),   # appears with nobody near
    ])
    stall = make_composite(TABLE, d / "stall.mp4", 5.0, 45.0,
                           [Paste(bottle_patch(i), (0.30 + 0.08 * i, 0.98), 0.3, appear_s=5.0) for i in range(3)])
    plain = make_composite(TABLE, d / "plain.mp4", 5.0, 45.0, [])
    return d, dump, stall, plain


def config(d, dump, stall, plain):
    cam = {"analysis_fps": 2, "location": {"lon": 117.005, "lat": 36.655, "crs": "wgs84"},
           "zones": [{"name": "floor", "polygon": FLOOR}]}
    doc = {
        "data_dir": str(DATA_DIR), "evidence": {"dir": str(d / "evidence")},
        "grid": {"path": str(REPO / "configs" / "grids" / "demo-district.geojson")},
        "cameras": [
            cam | {"id": "room", "url": str(dump), "rules": [
                {"id": "left-behind", "type": "dumping", "category": "environment.illegal-dumping",
                 "zone": "floor", "min_left_s": 5}]},
            cam | {"id": "stall", "url": str(stall), "rules": [
                {"id": "goods-out", "type": "occupation", "category": "market.road-occupation", "zone": "floor",
                 "min_duration_s": 10, "stall_classes": ["bottle"]}]},
        ],
    }
    path = d / "composites.yaml"
    path.write_text(yaml.safe_dump(doc))
    return load_config(path)


def test_dumping_and_occupation_on_composites(clips):
    d, dump, stall, plain = clips
    cfg = config(d, dump, stall, plain)
    labels = LabelFile.model_validate({"slack_s": 5, "clips": [
        {"camera": "room", "expected": [{"rule": "left-behind", "start": 13.8, "end": 30.0}]},
        {"camera": "stall", "expected": [{"rule": "goods-out", "start": 5.0, "end": 40.0}]},
        {"camera": "stall", "source": str(plain), "expected": []},  # the same scene without goods
    ]})
    scores = evaluate(cfg, labels)
    for rule in ("left-behind", "goods-out"):
        s = scores[rule]
        assert (s.tp, s.fp, s.fn) == (1, 0, 0), (rule, s)
    # Opens once the object has been alone 5 s (dumping) or out 10 s (occupation), not much later.
    assert 5.0 <= scores["left-behind"].delays[0] <= 8.0
    assert 10.0 <= scores["goods-out"].delays[0] <= 13.0


def test_dumping_event_shows_the_scene_before_and_after(clips):
    import io
    import json

    import cv2
    import numpy as np

    from xueliang.replay import replay

    d, dump, stall, plain = clips
    cfg = config(d, dump, stall, plain)
    out = io.StringIO()
    replay(cfg, "room", out)
    [opened] = [json.loads(line) for line in out.getvalue().splitlines() if '"opened"' in line]
    ev = opened["evidence"]
    assert ev["before"] and ev["snapshot"] and set(ev["sha256"]) >= {"before", "snapshot", "crop"}
    before = cv2.imread(str(d / "evidence" / ev["before"].rsplit("/", 1)[1]))
    after = cv2.imread(str(d / "evidence" / ev["snapshot"].rsplit("/", 1)[1]))
    h, w = before.shape[:2]
    x1, y1, x2, y2 = (int(v * s) for v, s in zip(ev["bbox"], (w, h, w, h)))
    inner = (slice(y1 + 4, y2 - 4), slice(x1 + 4, x2 - 4))  # inside the drawn box lines
    # The bottle is in the after picture and not yet in the before one.
    assert np.abs(before[inner].astype(int) - after[inner].astype(int)).mean() > 20
