"""Cost of the second stage (plate reading) per stationary vehicle, beside the detector's cost per frame.

One run, same process, same frames: the real plate photos of `../shared/fixtures/plates` (gate and
street camera frames, 690 to 3264 px wide). For each photo:
  detector: YoloDetector.detect (yolov8n, the configured backend, 640) on the whole frame;
  reader:   the shipped plate reader on the crop of each vehicle yolov8n found (box + 10 % margin,
            as `readers` crops it), timed per read; a stationary vehicle costs `--frames` reads, once.
Prints medians and the ratio (one vehicle's reads / one frame's detection), and the overhead per
analysed frame for a vehicle parked `--parked-s` seconds at `--fps` analysed frames per second.

    python bench/plate_reader.py [--repeat 3] [--frames 3] [--fps 2] [--parked-s 60]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import cv2

from detectors.detector_config import ModelConfig
from detectors.readers.engines import PlateStateReader
from detectors.readers.plate_models import fetch_plate_models
from detectors.readers.plates import OnnxPlateReader
from detectors.readers.stage import _crop
from detectors.yolo import YoloDetector

PLATES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "plates"
VEHICLES = ("car", "truck", "bus")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--frames", type=int, default=3, help="reads per stationary vehicle (readers[].frames)")
    ap.add_argument("--fps", type=float, default=2.0, help="analysed frames per second")
    ap.add_argument("--parked-s", type=float, default=60.0, help="how long a vehicle stands (parking min_stationary_s)")
    ap.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads of the plate reader")
    args = ap.parse_args()
    data_dir = Path(os.environ.get("XUELIANG_DATA_DIR", ".data"))
    model = ModelConfig()
    det = YoloDetector(model, data_dir)
    reader = PlateStateReader(OnnxPlateReader(fetch_plate_models(data_dir), threads=args.threads))
    ids = det.class_ids(list(VEHICLES))
    images = [cv2.imread(str(p)) for p in sorted(PLATES.glob("*.jpg"))]
    images = [im for im in images if min(im.shape[:2]) >= 320]  # whole frames, not plate crops
    crops = []
    for im in images:
        d = det.detect(im, ids)
        h, w = im.shape[:2]
        for box in d.xyxy:
            crop = _crop(im, (box[0] / w, box[1] / h, box[2] / w, box[3] / h), 0.1, 40)
            if crop is not None:
                crops.append(crop)
    reader.read(crops[0])  # warm-up
    det_ms, read_ms, found = [], [], 0
    for _ in range(args.repeat):
        for im in images:
            t0 = time.perf_counter()
            det.detect(im, ids)
            det_ms.append(1000 * (time.perf_counter() - t0))
        for crop in crops:
            t0 = time.perf_counter()
            r = reader.read(crop)
            read_ms.append(1000 * (time.perf_counter() - t0))
            found += r is not None
    d, r = statistics.median(det_ms), statistics.median(read_ms)
    per_vehicle = args.frames * r
    frames_parked = args.fps * args.parked_s
    print(json.dumps({
        "frames": len(images), "vehicle_crops": len(crops), "plates_read_share": round(found / len(read_ms), 2),
        "backend": model.backend, "imgsz": model.imgsz, "cpus": os.cpu_count(), "load_avg_1m": os.getloadavg()[0],
        "detector_ms_per_frame_median": round(d, 1), "plate_read_ms_median": round(r, 1),
        "plate_read_ms_p90": round(statistics.quantiles(read_ms, n=10)[-1], 1),
        "reads_per_vehicle": args.frames, "second_stage_ms_per_vehicle": round(per_vehicle, 1),
        "ratio_vehicle_reads_to_one_frame_detection": round(per_vehicle / d, 2),
        "overhead_per_analysed_frame_while_parked": round(per_vehicle / (frames_parked * d), 4),
    }, indent=1))


if __name__ == "__main__":
    main()
