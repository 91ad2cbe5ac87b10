"""100 cameras on one machine in keyframe mode: every camera online and analysed at its rate?

A real GStreamer RTSP server (tests/rtsp_server.py) serves the bundled clip (768x432, 1 s GOP)
on one mount; `N` cameras of one `xueliang` service connect to it as separate RTSP clients,
each analysed at `--fps` (below the keyframe rate, so only keyframes are decoded). No detection
rules: this measures what ingestion itself costs (RTSP, demux, decode, sampling, the hand-off,
video-quality checks), the part that must scale to hundreds of cameras per machine.

    python bench/hundred_cameras.py [--cameras 100] [--fps 0.5] [--seconds 60]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.rtsp import RtspServer  # noqa: E402
from xueliang.config import ServiceConfig  # noqa: E402
from xueliang.service import Service  # noqa: E402


def config(url: str, n: int, fps: float, tmp: Path) -> ServiceConfig:
    cams = [{"id": f"cam-{i:03d}", "url": url, "analysis_fps": fps,
             "location": {"lon": 117.005, "lat": 36.655, "crs": "wgs84"}} for i in range(n)]
    return ServiceConfig.model_validate({
        "data_dir": os.environ.get("XUELIANG_DATA_DIR", str(REPO / ".data")),
        "cameras": cams, "grid": {"path": str(REPO / "configs/grids/demo-district.geojson")},
        "outbox": {"path": str(tmp / "outbox.sqlite3")}, "evidence": {"dir": str(tmp / "evidence")},
        "api": {"enabled": False}, "log": {"level": "warning", "format": "console"},
    })


async def run(args) -> dict:
    server = RtspServer({"cam": REPO / "configs/media/table-stays.mp4"})
    server.start()
    proc = psutil.Process()
    rss_base = proc.memory_info().rss
    try:
        with tempfile.TemporaryDirectory() as tmp:
            svc = Service(config(server.url("cam"), args.cameras, args.fps, Path(tmp)))
            task = asyncio.create_task(svc.run())
            await asyncio.sleep(args.warmup)
            rss0 = proc.memory_info().rss
            before = {c.config.id: (c.worker.status.frames_sampled, c.stage.frames_analysed) for c in svc.cameras}
            cpu0, t0 = proc.cpu_times(), time.monotonic()
            srv = psutil.Process(server.proc.pid)
            srv_cpu0 = srv.cpu_times()
            await asyncio.sleep(args.seconds)
            wall = time.monotonic() - t0
            cpu1, srv_cpu1 = proc.cpu_times(), srv.cpu_times()
            states = [c.worker.status.state.value for c in svc.cameras]
            rates = [(c.stage.frames_analysed - before[c.config.id][1]) / wall for c in svc.cameras]
            dropped = sum(c.slot.dropped for c in svc.cameras)
            rss1 = proc.memory_info().rss
            svc.stopping.set()
            await task
    finally:
        server.stop()
    cpu = (cpu1.user - cpu0.user + cpu1.system - cpu0.system) / wall
    return {
        "cameras": args.cameras, "analysis_fps": args.fps, "seconds": round(wall, 1),
        "online": states.count("online"),
        "analysed_fps_min": round(min(rates), 3), "analysed_fps_median": round(sorted(rates)[len(rates) // 2], 3),
        "ratio_min_to_configured": round(min(rates) / args.fps, 3),
        "frames_dropped": dropped,
        "service_cpu_cores": round(cpu, 2), "cpus": os.cpu_count(),
        "rtsp_server_cpu_cores": round((srv_cpu1.user - srv_cpu0.user + srv_cpu1.system - srv_cpu0.system) / wall, 2),
        "rss_mb": round(rss1 / 2**20, 1), "rss_growth_mb": round((rss1 - rss0) / 2**20, 1),
        "rss_per_camera_mb": round((rss1 - rss_base) / 2**20 / args.cameras, 2),
        "cameras_per_core": round(args.cameras / cpu, 1) if cpu else None,
    }


def main() -> None:
    from xueliang.logs import setup_logging

    setup_logging("warning", "console")
    ap = argparse.ArgumentParser()
    ap.add_argument("--cameras", type=int, default=100)
    ap.add_argument("--fps", type=float, default=0.5)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--warmup", type=float, default=20)
    print(json.dumps(asyncio.run(run(ap.parse_args())), indent=2))


if __name__ == "__main__":
    main()
