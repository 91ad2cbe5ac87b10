"""How many cameras one worker process analyses at rate, per core, beside the bare model's ceiling.

For each N, a real `xueliang run` process (API on a free loopback port, no Kafka) runs N file
cameras looping the bundled clip `configs/media/table-stays.mp4` (768x432, 10 fps, a keyframe
every second) at `--fps` (1: keyframes alone are decoded), each with the dwell rule of
configs/examples/table-dwell.yaml, so a camera costs what a deployed one costs: decode, the model,
ByteTrack, the rule, the lifecycle, evidence and the outbox. After a warm-up the benchmark reads
`GET /cameras` (frames analysed per camera) and the process's CPU time and RSS twice, `--seconds`
apart.

The ceiling is measured in the same run, right before each service (so under the same load of
the machine): `YoloDetector.detect` alone on the clip's frames at the same rate, with the same
threads, as frames per second of wall time and per CPU-second. A camera at `--fps` needs `--fps`
frames/s, so the bare model's frames per CPU-second divided by `--fps` is the most cameras one
core could analyse; `ratio` is ours (analysed frames per CPU-second of the service, over `--fps`)
over that. Per CPU-second, because other processes on a shared machine take cores from both.

    python bench/worker_capacity.py [--cameras 5,10,20,40] [--fps 1] [--seconds 25] [--warmup 10]

`--gate` compares the change gate off and on, side by side in one run (two services per N, same
cameras): half the cameras watch a quiet scene (a composite: one real frame of the empty lane of
car-detection.mp4, encoded as a 10-fps clip with fresh sensor noise on every frame: a still
street), half the bundled busy clips (table-stays.mp4 and the shared fixture clips in turn). It
also reads the gate's own CPU time per analysed frame from `/metrics` beside the bare model's
time per frame, and prints as its last line
`cameras per core at F fps: gate off X, gate on Y, ratio Y/X`.

    python bench/worker_capacity.py --gate --cameras 20 --fps 0.5 [--seconds 25] [--precision int8]
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bridge.http.auth import new_token  # noqa: E402
from tests.brokers import free_port  # noqa: E402

CLIP = REPO / "configs" / "media" / "table-stays.mp4"
TEMPLATE = REPO / "configs" / "examples" / "table-dwell.yaml"
AT_RATE = 0.9  # a camera analysed at >= 90 % of its configured rate counts as sustained
from tests.helpers import FIXTURES  # noqa: E402
BUSY = [CLIP, *(FIXTURES / n for n in ("one-by-one-person-detection.mp4", "car-detection.mp4", "bottle-detection.mp4"))]


def quiet_clip(path: Path, seconds: float = 30.0) -> Path:
    """A still street: one real frame of the empty lane (car-detection.mp4 at 2 s), 10 fps, a
    keyframe every second, with fresh sensor noise (sigma 2 grey levels) on every frame."""
    import av
    import numpy as np

    with av.open(str(FIXTURES / "car-detection.mp4")) as c:
        still = next(f for f in c.decode(video=0) if f.time >= 2.0).to_ndarray(format="bgr24")
    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as out:
        st = out.add_stream("libx264", rate=10)
        st.width, st.height, st.pix_fmt = still.shape[1], still.shape[0], "yuv420p"
        st.options = {"g": "10", "keyint_min": "10", "sc_threshold": "0", "crf": "23"}
        for _ in range(int(seconds * 10)):
            img = np.clip(still + rng.normal(0, 2.0, still.shape), 0, 255).astype(np.uint8)
            out.mux(st.encode(av.VideoFrame.from_ndarray(img, format="bgr24")))
        out.mux(st.encode())
    return path


def service_config(n: int, fps: float, tmp: Path, token_record: dict, gate: bool | None = None,
                   quiet: Path | None = None) -> dict:
    """`gate` None: the plain benchmark (every camera on the table clip, the gate as configured);
    True/False: the mix (even cameras on `quiet`, odd ones on the busy clips), gate on or off."""
    cam = yaml.safe_load(TEMPLATE.read_text())["cameras"][0]
    # Cameras stand 300 m or more apart in the demo district, so the cross-source merge keeps
    # each camera's incidents its own (as on a street) instead of folding them into one.
    cams = [{**cam, "id": f"cam-{i:03d}", "name": None, "url": str(CLIP), "analysis_fps": fps,
             "location": {"lon": 117.001 + 0.0035 * (i % 8), "lat": 36.651 + 0.0035 * (i // 8 % 8), "crs": "wgs84"}}
            for i in range(n)]
    if gate is not None:
        for i, c in enumerate(cams):
            c["url"] = str(quiet if i % 2 == 0 else BUSY[i // 2 % len(BUSY)])
            c["gate"] = {"enabled": gate}
    return {
        "data_dir": os.environ.get("XUELIANG_DATA_DIR", str(REPO / ".data")),
        "cameras": cams, "grid": {"path": str(REPO / "configs/grids/demo-district.geojson")},
        "outbox": {"path": str(tmp / "outbox.sqlite3")}, "evidence": {"dir": str(tmp / "evidence")},
        "api": {"host": "127.0.0.1", "console_db": str(tmp / "console.sqlite3"),
                "auth": {"tokens": [token_record], "tokens_file": str(tmp / "tokens.yaml")}},
        "log": {"level": "warning", "format": "json"},
        "model": {"precision": os.environ.get("BENCH_PRECISION", "fp32")},
    }


class BareModel:
    """YoloDetector.detect alone on the clip's frames sampled at `fps`, as the service's model runs."""

    def __init__(self, fps: float) -> None:
        from detectors.detector_config import ModelConfig
        from detectors.yolo import YoloDetector
        from ingest.video import iter_frames

        self.fps = fps
        self.frames = [f.image for f in iter_frames("bare", str(CLIP), fps)]
        self.det = YoloDetector(ModelConfig(precision=os.environ.get("BENCH_PRECISION", "fp32")),
                                Path(os.environ.get("XUELIANG_DATA_DIR", REPO / ".data")))
        self.det.detect(self.frames[0])  # warm-up

    def measure(self, seconds: float) -> dict:
        me = psutil.Process()
        c0, t0, n = me.cpu_times(), time.monotonic(), 0
        while time.monotonic() - t0 < seconds:
            self.det.detect(self.frames[n % len(self.frames)])
            n += 1
        wall, c1 = time.monotonic() - t0, me.cpu_times()
        cpu = (c1.user - c0.user) + (c1.system - c0.system)
        return {"frames": n, "frames_per_s": round(n / wall, 2), "cpu_cores": round(cpu / wall, 2),
                "frames_per_cpu_s": round(n / cpu, 2), "cameras_per_core_ceiling": round(n / cpu / self.fps, 2)}


def cameras_snapshot(api: httpx.Client) -> dict[str, dict]:
    return {c["id"]: c for c in api.get("/cameras").raise_for_status().json()}


def gate_metrics(api: httpx.Client) -> dict[str, float]:
    """Sums over cameras of the gate's counters: frames by decision, its own seconds."""
    out: dict[str, float] = {}
    for line in api.get("/metrics").raise_for_status().text.splitlines():
        if line.startswith("xueliang_gate_frames_total{"):
            key = line.split('decision="')[1].split('"')[0]
        elif line.startswith("xueliang_gate_seconds_total{"):
            key = "gate_seconds"
        else:
            continue
        out[key] = out.get(key, 0.0) + float(line.rsplit(" ", 1)[1])
    return out


def measure(n: int, args, bare: dict, gate: bool | None = None, quiet: Path | None = None) -> dict:
    token, record = new_token("bench", "admin")
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        cfg = tmp / "service.yaml"
        cfg.write_text(yaml.safe_dump(service_config(n, args.fps, tmp, record.model_dump(exclude_none=True), gate, quiet)))
        port = free_port()
        load = os.getloadavg()
        log = open(tmp / "service.log", "wb")
        proc = subprocess.Popen([sys.executable, "-m", "xueliang.cli", "run", "-c", str(cfg), "--port", str(port)],
                                cwd=REPO, stdout=subprocess.DEVNULL, stderr=log)
        try:
            api = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10,
                               headers={"Authorization": f"Bearer {token}"})
            deadline = time.monotonic() + 90
            while True:
                if proc.poll() is not None:
                    raise SystemExit(f"service exited with {proc.returncode}:\n{(tmp / 'service.log').read_text()[-3000:]}")
                try:
                    if api.get("/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit("service not ready after 90 s")
                time.sleep(0.5)
            time.sleep(args.warmup)
            ps = psutil.Process(proc.pid)
            a, c0, t0, ga = cameras_snapshot(api), ps.cpu_times(), time.monotonic(), gate_metrics(api)
            time.sleep(args.seconds)
            b, c1, wall, gb = cameras_snapshot(api), ps.cpu_times(), time.monotonic() - t0, gate_metrics(api)
            rss = ps.memory_info().rss
            events = len(api.get("/events", params={"limit": 1000}).raise_for_status().json()["events"])
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()
    cpu = ((c1.user - c0.user) + (c1.system - c0.system)) / wall
    rates = sorted((b[i]["frames_analysed"] - a[i]["frames_analysed"]) / wall for i in b)
    total = sum(rates)
    per_core = total / cpu / args.fps if cpu else 0.0
    gated = {k: gb.get(k, 0.0) - ga.get(k, 0.0) for k in gb}
    decided = sum(v for k, v in gated.items() if k != "gate_seconds")
    gate = {} if gate is None else {
        "gate": gate, "gate_frames": {k: int(v) for k, v in gated.items() if k != "gate_seconds"},
        "gate_ms_per_frame": round(1000 * gated.get("gate_seconds", 0.0) / decided, 2) if decided else None,
        "model_ms_per_frame": round(1000 / bare["frames_per_cpu_s"], 1)}
    return gate | {
        "cameras": n, "load_at_start": [round(x, 2) for x in load], "seconds": round(wall, 1),
        "online": sum(c["state"] == "online" for c in b.values()),
        "keyframes_only": sum(bool(c["keyframes_only"]) for c in b.values()),
        "analysed_fps_min": round(rates[0], 3), "analysed_fps_median": round(rates[len(rates) // 2], 3),
        "at_rate": sum(r >= AT_RATE * args.fps for r in rates),
        "analysed_fps_total": round(total, 2),
        "frames_dropped": sum(b[i]["frames_dropped"] - a[i]["frames_dropped"] for i in b),
        "events": events,
        "cpu_cores": round(cpu, 2), "cpu_ms_per_camera_s": round(1000 * cpu / n, 1),
        "cameras_at_rate_per_core": round(per_core, 2),
        "ratio_to_bare_per_core": round(per_core / bare["cameras_per_core_ceiling"], 3),
        # Meaningful once the worker is saturated (fewer at rate than configured): frames/s of wall
        # time against the bare model's, both with every core the machine lends.
        "ratio_to_bare_wall": round(total / bare["frames_per_s"], 3),
        "rss_mb": round(rss / 2**20, 1), "rss_per_camera_mb": round(rss / 2**20 / n, 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cameras", default="5,10,20,40", help="comma-separated camera counts, one service each")
    ap.add_argument("--fps", type=float, default=1.0, help="analysis_fps of every camera")
    ap.add_argument("--seconds", type=float, default=25, help="measured window per count")
    ap.add_argument("--warmup", type=float, default=10, help="seconds after readiness before measuring")
    ap.add_argument("--bare-seconds", type=float, default=8, help="how long the bare model runs before each service")
    ap.add_argument("--gate", action="store_true", help="the change gate off and on, side by side, on a quiet/busy mix")
    ap.add_argument("--precision", choices=["fp32", "int8"], default="fp32",
                    help="model.precision of the services and the bare model (int8: `xueliang models fetch --int8` first)")
    args = ap.parse_args()
    os.environ["BENCH_PRECISION"] = args.precision
    if args.gate:
        return gate_main(args)
    print(json.dumps({"cpus": os.cpu_count(), "load_at_start": [round(x, 2) for x in os.getloadavg()],
                      "clip": CLIP.name, "analysis_fps": args.fps}), flush=True)
    model = BareModel(args.fps)
    rows = []
    for n in (int(x) for x in args.cameras.split(",")):
        bare = model.measure(args.bare_seconds)
        print(json.dumps({"bare_model": bare}), flush=True)
        rows.append(measure(n, args, bare) | {"bare": bare})
        print(json.dumps(rows[-1]), flush=True)
    if len(rows) >= 2:  # memory a camera adds: the slope between the smallest and the largest run
        lo, hi = rows[0], rows[-1]
        print(json.dumps({"rss_slope_mb_per_camera": round((hi["rss_mb"] - lo["rss_mb"]) / (hi["cameras"] - lo["cameras"]), 2)}))
    print(f"\n| cameras | at rate (>= {AT_RATE:.0%}) | analysed fps min / median | total fps | CPU cores | "
          "CPU ms per camera-second | cameras at rate per core | bare ceiling per core | ratio | RSS MB | RSS per camera MB | load |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['cameras']} | {r['at_rate']}/{r['cameras']} | {r['analysed_fps_min']} / {r['analysed_fps_median']} | "
              f"{r['analysed_fps_total']} | {r['cpu_cores']} | {r['cpu_ms_per_camera_s']} | {r['cameras_at_rate_per_core']} | "
              f"{r['bare']['cameras_per_core_ceiling']} | {r['ratio_to_bare_per_core']} | {r['rss_mb']} | "
              f"{r['rss_per_camera_mb']} | {r['load_at_start'][0]} |")



def gate_main(args) -> None:
    print(json.dumps({"cpus": os.cpu_count(), "load_at_start": [round(x, 2) for x in os.getloadavg()],
                      "mix": "half quiet (composite), half busy", "busy": [p.name for p in BUSY],
                      "analysis_fps": args.fps, "precision": args.precision}), flush=True)
    model = BareModel(args.fps)
    rows = []
    with tempfile.TemporaryDirectory() as tmpdir:
        quiet = quiet_clip(Path(tmpdir) / "quiet-lane.mp4")
        for n in (int(x) for x in args.cameras.split(",")):
            for gate in (False, True):
                bare = model.measure(args.bare_seconds)
                rows.append(measure(n, args, bare, gate, quiet) | {"bare": bare})
                print(json.dumps(rows[-1]), flush=True)
    print(f"\n| cameras | gate | at rate (>= {AT_RATE:.0%}) | analysed fps min / median | CPU cores | "
          "cameras at rate per core | frames full / region / gated | gate ms per frame | model ms per frame | load |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        f = r["gate_frames"]
        print(f"| {r['cameras']} | {'on' if r['gate'] else 'off'} | {r['at_rate']}/{r['cameras']} | "
              f"{r['analysed_fps_min']} / {r['analysed_fps_median']} | {r['cpu_cores']} | {r['cameras_at_rate_per_core']} | "
              f"{f.get('full', 0)} / {f.get('region', 0)} / {f.get('gated', 0)} | {r['gate_ms_per_frame']} | "
              f"{r['model_ms_per_frame']} | {r['load_at_start'][0]} |")
    off = [r["cameras_at_rate_per_core"] for r in rows if not r["gate"]]
    on = [r["cameras_at_rate_per_core"] for r in rows if r["gate"]]
    x, y = sum(off) / len(off), sum(on) / len(on)
    print(f"cameras per core at {args.fps:g} fps: gate off {x:.2f}, gate on {y:.2f}, ratio {y / x:.2f}")


if __name__ == "__main__":
    main()
