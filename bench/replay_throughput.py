"""Replay throughput against the raw decode-plus-inference rate of the same clip, same run.

raw:    PyAV decodes the clip, every frame at the analysis rate becomes a BGR array, and the
        OpenVINO model plus Ultralytics' NMS runs on it: nothing of ours.
replay: `xueliang replay` on the same clip and config: the same work plus tracking, rules,
        lifecycle, grid resolution, evidence snapshots and JSON output.

    python bench/replay_throughput.py [--config configs/examples/table-dwell.yaml] [--camera table]
"""
from __future__ import annotations

import argparse
import io
import json
import os
import platform
import time
from pathlib import Path

import av
import numpy as np

from xueliang.config import load_config
from xueliang.replay import replay
from xueliang.wiring import build_core


def raw_rate(url: str, fps: float, model_dir: Path, imgsz: int, threads: int) -> tuple[int, float]:
    import openvino as ov
    import torch
    from ultralytics.data.augment import LetterBox
    from ultralytics.utils import ops
    from ultralytics.utils.nms import non_max_suppression

    torch.set_num_threads(1)
    compiled = ov.Core().compile_model(str(next(model_dir.glob("*.xml"))), "CPU",
                                       {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": threads})
    req, out = compiled.create_infer_request(), compiled.output(0)
    lb = LetterBox((imgsz, imgsz), auto=False)
    n, next_t = 0, 0.0
    t0 = time.perf_counter()
    with av.open(url) as c:
        for f in c.decode(video=0):
            if f.time + 1e-6 < next_t:
                continue
            next_t += 1 / fps
            img = f.to_ndarray(format="bgr24")
            x = np.ascontiguousarray(lb(image=img)[:, :, ::-1].transpose(2, 0, 1), dtype=np.float32)[None] / 255
            det = non_max_suppression(torch.from_numpy(req.infer({0: x})[out]), conf_thres=0.25, iou_thres=0.7)[0]
            ops.scale_boxes((imgsz, imgsz), det[:, :4], img.shape)
            n += 1
    return n, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="configs/examples/table-dwell.yaml")
    ap.add_argument("--camera", default="table")
    args = ap.parse_args()
    cfg = load_config(args.config)
    cam = cfg.camera(args.camera)
    core = build_core(cfg)
    threads = cfg.model.threads or os.cpu_count() or 1
    # Warm both paths once so neither pays the first-inference cost in its timing.
    raw_rate(cam.url, 0.5, core.detector.path, core.detector.imgsz, threads)
    n_raw, s_raw = raw_rate(cam.url, cam.analysis_fps, core.detector.path, core.detector.imgsz, threads)
    stats = replay(cfg, args.camera, io.StringIO(), core=core)
    raw_fps, ours_fps = n_raw / s_raw, stats.fps
    result = {
        "clip": Path(cam.url).name, "analysis_fps": cam.analysis_fps, "backend": cfg.model.backend,
        "imgsz": core.detector.imgsz, "cpus": os.cpu_count(), "machine": platform.processor() or platform.machine(),
        "raw_frames": n_raw, "raw_frames_per_s": round(raw_fps, 1),
        "replay_frames": stats.frames, "replay_frames_per_s": round(ours_fps, 1), "replay_events": stats.events,
        "ratio_replay_to_raw": round(ours_fps / raw_fps, 3),
    }
    print(json.dumps(result, indent=2))
    print(f"\nreplay {ours_fps:.1f} frames/s vs raw decode+inference {raw_fps:.1f} frames/s: "
          f"ratio {ours_fps / raw_fps:.3f}")


if __name__ == "__main__":
    main()
