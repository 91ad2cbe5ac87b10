"""Cost of keeping identities through occlusions: tracking and rules per frame with the frame
given to the tracker (appearance signatures, holds) and without it (position only), side by side
on the same detections of the table clip.

    python bench/occlusion_cost.py [--fps 2] [--repeat 3]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from detectors.analyzer import CameraAnalyzer
from detectors.yolo import YoloDetector
from ingest.video import iter_frames
from xueliang.config import load_config

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fps", type=float, default=2.0)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    cfg = load_config(REPO / "configs" / "examples" / "table-dwell.yaml")
    cam = cfg.cameras[0]
    det = YoloDetector(cfg.model, cfg.data_dir)
    frames = list(iter_frames(cam.id, cam.url, args.fps))
    probe = CameraAnalyzer(cam.id, cam.zones, cam.rules, cfg.tracker, args.fps)
    ids = det.class_ids(probe.classes)
    dets = [det.detect(f.image, ids) for f in frames]
    best = {}
    for with_image in (False, True, False, True):
        for _ in range(args.repeat):
            an = CameraAnalyzer(cam.id, cam.zones, cam.rules, cfg.tracker, args.fps)
            t0 = time.perf_counter()
            for f, d in zip(frames, dets):
                an.process(d, f.media_time_s, image=f.image if with_image else None)
            s = time.perf_counter() - t0
            best[with_image] = min(best.get(with_image, s), s)
    n = len(frames)
    print(json.dumps({
        "frames": n, "fps": args.fps,
        "position_only_ms_per_frame": round(1000 * best[False] / n, 3),
        "with_appearance_ms_per_frame": round(1000 * best[True] / n, 3),
        "ratio": round(best[True] / best[False], 2),
    }))


if __name__ == "__main__":
    main()
