"""Does a second worker process on the same machine use the cores one process leaves idle?

One `xueliang run` process with N cameras (no Kafka) against W worker processes in cluster mode
(noida-db on loopback, the same N cameras published to the registry), in one run. Each side runs
past one process's capacity (N cameras at 1 frame/s); the benchmark reads every process's
`/cameras` twice, `--seconds` apart, and their CPU time, and prints total analysed frames/s and
CPU cores for both, and the ratio.

    python bench/worker_processes.py [--cameras 30] [--workers 2] [--seconds 30] [--warmup 20]
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

from tests.brokers import NoidaKafka  # noqa: E402
from tests.cluster_harness import camera, cameras_of, publish_cameras, worker  # noqa: E402
from tests.service_proc import ServiceProcess, demo_config  # noqa: E402


async def sample(procs: list[ServiceProcess]) -> tuple[float, float, int]:
    frames, cpu, cams = 0, 0.0, 0
    for p in procs:
        for c in await cameras_of(p):
            frames += c["frames_analysed"]
            cams += 1
        t = psutil.Process(p.proc.pid).cpu_times()
        cpu += t.user + t.system
    return frames, cpu, cams


async def measure(procs: list[ServiceProcess], args) -> dict:
    await asyncio.sleep(args.warmup)
    f0, c0, _ = await sample(procs)
    t0 = time.monotonic()
    await asyncio.sleep(args.seconds)
    f1, c1, cams = await sample(procs)
    wall = time.monotonic() - t0
    return {"processes": len(procs), "cameras_running": cams, "analysed_fps_total": round((f1 - f0) / wall, 2),
            "cpu_cores": round((c1 - c0) / wall, 2), "frames_per_cpu_s": round((f1 - f0) / max(c1 - c0, 1e-9), 2)}


async def main(args) -> None:
    print(json.dumps({"cpus": os.cpu_count(), "load_at_start": [round(x, 2) for x in os.getloadavg()],
                      "cameras": args.cameras, "workers": args.workers}), flush=True)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        (tmp / "one").mkdir()
        doc = demo_config(tmp / "one")
        doc["cameras"] = [camera(i) for i in range(args.cameras)]
        doc["log"] = {"level": "warning", "format": "json"}
        one = ServiceProcess(tmp / "one", doc)
        await one.__aenter__()
        try:
            single = await measure([one], args)
        finally:
            await one.stop()
        print(json.dumps({"one_process": single}), flush=True)

        broker = NoidaKafka()
        await asyncio.to_thread(broker.start)
        try:
            publish_cameras(tmp, broker.bootstrap, args.cameras)
            workers = [worker(tmp, broker.bootstrap, f"w{i}") for i in range(args.workers)]
            await asyncio.gather(*(w.__aenter__() for w in workers))
            try:
                multi = await measure(workers, args)
            finally:
                await asyncio.gather(*(w.stop() for w in workers))
        finally:
            await asyncio.to_thread(broker.stop)
        print(json.dumps({"worker_processes": multi}), flush=True)
    print(f"\n| setup | cameras running | analysed frames/s | CPU cores | frames per CPU-s | load |\n|---|---|---|---|---|---|")
    load = round(os.getloadavg()[0], 2)
    for name, r in (("1 process", single), (f"{args.workers} worker processes (cluster)", multi)):
        print(f"| {name} | {r['cameras_running']} | {r['analysed_fps_total']} | {r['cpu_cores']} | {r['frames_per_cpu_s']} | {load} |")
    print(f"\nratio, analysed frames/s: {multi['analysed_fps_total'] / max(single['analysed_fps_total'], 1e-9):.2f}; "
          f"CPU cores: {multi['cpu_cores'] / max(single['cpu_cores'], 1e-9):.2f}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cameras", type=int, default=30)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--warmup", type=float, default=20)
    asyncio.run(main(ap.parse_args()))
