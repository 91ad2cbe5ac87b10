"""Inference batched across cameras against one frame at a time, side by side in one run.

N camera loops (coroutines, as in the service) each await the detections of their frame before
sending the next, through `InferenceBatcher`, the code path `xueliang run` uses. Frames are real
(the three fixture clips, decoded once, kept in memory) and so is the model (the exported
yolov8n). Each configuration runs the same frames:
  batch 1:  max_size=1: every frame its own forward pass (what the service did before batching);
  batch B:  max_size=B: whatever is pending from the N cameras, up to B, in one forward pass.
  direct:   `YoloDetector.detect` in a plain loop over the same frames, no batcher, no event
            loop: the bare one-by-one limit, to show what the batcher itself costs.
Timed: letterbox, forward pass and NMS per image, i.e. all the inference thread does. Both wall
time (frames/s) and the process's CPU time (frames per CPU-second) are kept, each the least of
`--repeat` interleaved runs: on a shared, loaded machine wall time mostly measures the neighbours.

    python bench/inference_batching.py [--cameras 16] [--frames 96] [--sizes 1,4,8,16] [--repeat 2]
"""
from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's code, even where another is installed

from detectors.batching import DetectRequest, InferenceBatcher  # noqa: E402
from detectors.detector_config import ModelConfig  # noqa: E402
from detectors.yolo import YoloDetector  # noqa: E402
from ingest.video import iter_frames  # noqa: E402
from tests.helpers import DATA_DIR, FIXTURES  # noqa: E402

CLIPS = ["one-by-one-person-detection.mp4", "car-detection.mp4", "bottle-detection.mp4"]


async def run_cameras(batcher: InferenceBatcher, det: YoloDetector, per_camera: list[list]) -> tuple[float, float]:
    async def camera(frames):
        for image in frames:
            await batcher.detect([DetectRequest(det, image)])
    t0, c0 = time.perf_counter(), time.process_time()
    await asyncio.gather(*(camera(f) for f in per_camera))
    return time.perf_counter() - t0, time.process_time() - c0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cameras", type=int, default=16)
    ap.add_argument("--frames", type=int, default=96, help="frames in all per configuration")
    ap.add_argument("--sizes", default="1,4,8,16")
    ap.add_argument("--wait-ms", type=float, default=2.0)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--backend", default="openvino", choices=["openvino", "onnx", "torch"])
    args = ap.parse_args()
    det = YoloDetector(ModelConfig(backend=args.backend), DATA_DIR)
    pool = [f.image for clip in CLIPS for f in itertools.islice(iter_frames(clip, str(FIXTURES / clip), 1.0), 16)]
    per = args.frames // args.cameras
    per_camera = [[pool[(c * per + i) % len(pool)] for i in range(per)] for c in range(args.cameras)]
    n = per * args.cameras
    sizes = [int(s) for s in args.sizes.split(",")]
    for b in sizes:  # warm-up: the first batch compiles the dynamic-batch model
        det.detect_batch(pool[:b], [None] * b)
    wall: dict[str, float] = {}
    cpu: dict[str, float] = {}
    mean_batch: dict[int, float] = {}

    def keep(key: str, w: float, c: float) -> None:
        wall[key], cpu[key] = min(wall.get(key, w), w), min(cpu.get(key, c), c)

    for _ in range(args.repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        for frames in per_camera:
            for image in frames:
                det.detect(image)
        keep("direct", time.perf_counter() - t0, time.process_time() - c0)
        for b in sizes:  # interleaved, so load changes hit every configuration alike
            batcher = InferenceBatcher(b, args.wait_ms / 1000)
            try:
                keep(f"batch_{b}", *asyncio.run(run_cameras(batcher, det, per_camera)))
            finally:
                batcher.close()
            mean_batch[b] = batcher.images / batcher.batches
    first = f"batch_{sizes[0]}"
    print(json.dumps({
        "backend": args.backend, "cameras": args.cameras, "frames": n, "cpus": os.cpu_count(),
        "load_avg": [round(x, 2) for x in os.getloadavg()],
        "frames_per_s": {k: round(n / v, 1) for k, v in wall.items()},
        "frames_per_cpu_s": {k: round(n / v, 1) for k, v in cpu.items()},
        "mean_batch": {f"batch_{b}": round(mean_batch[b], 1) for b in sizes},
        f"ratio_to_{first}_wall": {k: round(wall[first] / v, 3) for k, v in wall.items()},
        f"ratio_to_{first}_cpu": {k: round(cpu[first] / v, 3) for k, v in cpu.items()},
    }, indent=2))


if __name__ == "__main__":
    main()
