"""Cost of the scene model per analysed frame, as a fraction of yolov8n@640 inference, in one run.

Real frames (the lane and table clips, sampled at 2 frames/s) scaled to 1080p and 720p, kept in
memory; then, alternately per repeat, on the same frames:
  model:  YoloDetector.detect (letterbox, forward pass, NMS): what every analysed frame costs;
  scene:  SceneModel.update (downscale, brightness, registration, backgrounds, regions).
Target (issue 12): scene / model <= 0.10 at both sizes, state <= 5 MB per camera.

    XUELIANG_DATA_DIR=.data python bench/scene_model.py [--repeat 3] [--seconds 30]
"""
from __future__ import annotations

import argparse
import json
import os
import time
import tracemalloc
from pathlib import Path

import cv2

from detectors.detector_config import ModelConfig, SceneModelConfig
from detectors.scene_model import SceneModel
from detectors.yolo import YoloDetector
from ingest.video import iter_frames

CLIPS = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "video"


def frames(seconds: float) -> list:
    out = []
    for name in ("car-detection.mp4", "one-by-one-person-detection.mp4"):
        out += [f.image for f in iter_frames("bench", str(CLIPS / name), 2.0) if f.media_time_s < seconds]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=30.0, help="seconds of each clip")
    args = ap.parse_args()
    data_dir = Path(os.environ.get("XUELIANG_DATA_DIR", ".data"))
    det = YoloDetector(ModelConfig(), data_dir)
    base = frames(args.seconds)
    report = {"cpus": os.cpu_count(), "frames": len(base), "load_avg_start": os.getloadavg()[0]}
    for label, size in (("1080p", (1920, 1080)), ("720p", (1280, 720))):
        imgs = [cv2.resize(f, size, interpolation=cv2.INTER_LINEAR) for f in base]
        det.detect(imgs[0])  # warm-up
        model_s, scene_s = [], []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            for img in imgs:
                det.detect(img)
            model_s.append(time.perf_counter() - t0)
            scene = SceneModel(SceneModelConfig())
            t0 = time.perf_counter()
            for i, img in enumerate(imgs):
                scene.update(img, i * 0.5)
            scene_s.append(time.perf_counter() - t0)
        tracemalloc.start()
        scene = SceneModel(SceneModelConfig())
        for i, img in enumerate(imgs[:40]):
            scene.update(img, i * 0.5)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        n = len(imgs)
        model_ms, scene_ms = 1000 * min(model_s) / n, 1000 * min(scene_s) / n
        report[label] = {"model_ms_per_frame": round(model_ms, 2), "scene_ms_per_frame": round(scene_ms, 2),
                         "ratio_scene_to_model": round(scene_ms / model_ms, 3),
                         "state_mb": round(scene.nbytes / 2**20, 2), "peak_traced_mb": round(peak / 2**20, 2)}
    report["load_avg_end"] = os.getloadavg()[0]
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
