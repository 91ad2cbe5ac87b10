"""Cost of tracking and rules on top of inference, side by side in one run.

Decodes the clip once and keeps the sampled frames in memory, then times:
  model:  YoloDetector.detect on every frame (forward pass + NMS), nothing else;
  full:   the same detect, then CameraAnalyzer.process (filters, ByteTrack, every rule of the
          camera, lifecycle) on every frame.
Target (issue 5): full / model >= 0.9, i.e. tracking and rules cost under 10 % on top.

    python bench/detection_step.py [--config configs/examples/fixtures.yaml] [--camera table] [--repeat 2]
"""
from __future__ import annotations

import argparse
import json
import os
import time
from datetime import datetime, timezone

from detectors.analyzer import CameraAnalyzer
from ingest.video import iter_frames
from xueliang.config import load_config
from xueliang.wiring import build_core


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="configs/examples/fixtures.yaml")
    ap.add_argument("--camera", default="table")
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    cfg = load_config(args.config)
    cam = cfg.camera(args.camera)
    core = build_core(cfg)
    det = core.detector
    frames = list(iter_frames(cam.id, cam.url, cam.analysis_fps))
    det.detect(frames[0].image)  # warm-up
    at = datetime.now(timezone.utc)
    model_s, full_s, rules_s = [], [], []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        for f in frames:
            det.detect(f.image)
        model_s.append(time.perf_counter() - t0)
        analyzer = CameraAnalyzer(cam.id, cam.zones, cam.rules, cfg.tracker, cam.analysis_fps, cam.objects, cam.masks)
        t0, in_rules = time.perf_counter(), 0.0
        for f in frames:
            d = det.detect(f.image)
            t1 = time.perf_counter()
            analyzer.process(d, f.media_time_s, at, f.image)
            in_rules += time.perf_counter() - t1
        full_s.append(time.perf_counter() - t0)
        rules_s.append(in_rules)
    n = len(frames)
    model_fps, full_fps = n / min(model_s), n / min(full_s)
    print(json.dumps({
        "clip": os.path.basename(cam.url), "frames": n, "rules": [r.id for r in cam.rules],
        "backend": cfg.model.backend, "imgsz": det.imgsz, "cpus": os.cpu_count(),
        "model_frames_per_s": round(model_fps, 1), "full_frames_per_s": round(full_fps, 1),
        "tracking_and_rules_ms_per_frame": round(1000 * min(rules_s) / n, 2),
        "ratio_full_to_model": round(full_fps / model_fps, 3),
    }, indent=2))


if __name__ == "__main__":
    main()
