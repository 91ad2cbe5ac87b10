"""What live video costs: the built-in restreamer's CPU for one camera with 1 and N viewers,
side by side with the bare cost of reading the same RTSP stream with PyAV (demux only, the
floor any restreamer pays) and of decoding it (what re-encoding would start with).

    python bench/live_restream.py --seconds 15 --viewers 4

A password-protected GStreamer RTSP server on loopback serves the table fixture clip (768x432 H.264, 10 fps)
(tests/rtsp_server.py, system python with gi). CPU is the process's user+system time per wall
second (psutil), so 0.05 means 5 % of one core. Prints one JSON line.
"""
from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import urllib.request
from pathlib import Path

import av
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bridge.http.live.live_config import LiveConfig  # noqa: E402
from bridge.http.live.supervisor import Restreamer  # noqa: E402
from tests.helpers import TABLE_CLIP  # noqa: E402
from tests.rtsp import RtspServer  # noqa: E402


def cpu_of(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return t.user + t.system


def viewers(port: int, auth: str, n: int, seconds: float) -> int:
    """n HTTP readers of the camera's fMP4 for `seconds`; returns the bytes they got together."""
    got = [0] * n

    def read(i: int) -> None:
        req = urllib.request.Request(f"http://127.0.0.1:{port}/api/stream.mp4?src=cam", headers={"Authorization": auth})
        r = urllib.request.urlopen(req, timeout=30)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            got[i] += len(r.read1(65536))
        r.close()

    threads = [threading.Thread(target=read, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(got)


def restreamer_cpu(url: str, n: int, seconds: float) -> tuple[float, int]:
    import asyncio
    import subprocess

    rs = Restreamer(LiveConfig(enabled=True), {"cam": url})
    proc = subprocess.Popen(rs.command(rs.write_config()), stderr=subprocess.DEVNULL)
    try:
        time.sleep(2.0)  # listening
        p = psutil.Process(proc.pid)
        viewers(rs.port, rs._auth, n, 3.0)  # warm: the camera connection is open and steady
        c0, t0 = cpu_of(p), time.monotonic()
        nbytes = viewers(rs.port, rs._auth, n, seconds)
        return (cpu_of(p) - c0) / (time.monotonic() - t0), nbytes
    finally:
        proc.terminate()
        proc.wait(10)
        asyncio.run(rs.stop())


def bare_cpu(url: str, seconds: float, decode: bool) -> float:
    """This process's CPU per wall second while PyAV reads (and maybe decodes) the stream."""
    me = psutil.Process()
    with av.open(url, options={"rtsp_transport": "tcp"}, timeout=10) as inp:
        src = inp.streams.video[0]
        it = inp.demux(src)
        for _ in range(30):  # past the connection set-up
            next(it)
        c0, t0 = cpu_of(me), time.monotonic()
        for pkt in it:
            if decode:
                src.codec_context.decode(pkt)
            if time.monotonic() - t0 > seconds:
                break
        return (cpu_of(me) - c0) / (time.monotonic() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--viewers", type=int, default=4)
    args = ap.parse_args()
    with RtspServer({"cam": TABLE_CLIP}, credentials=("bench", "bench-password")) as rtsp:
        url = rtsp.url("cam")
        one, bytes_one = restreamer_cpu(url, 1, args.seconds)
        many, bytes_many = restreamer_cpu(url, args.viewers, args.seconds)
        demux = bare_cpu(url, args.seconds, decode=False)
        decode = bare_cpu(url, args.seconds, decode=True)
    print(json.dumps({
        "seconds": args.seconds, "viewers": args.viewers,
        "restreamer_cpu_1_viewer": round(one, 4), f"restreamer_cpu_{args.viewers}_viewers": round(many, 4),
        "bare_demux_cpu": round(demux, 4), "bare_decode_cpu": round(decode, 4),
        "ratio_restreamer_1_viewer_to_decode": round(one / decode, 3) if decode else None,
        "ratio_restreamer_to_demux": round(one / demux, 3) if demux else None,
        "kbit_s_per_viewer": round(bytes_many * 8 / 1000 / args.seconds / args.viewers, 1),
        "kbit_s_1_viewer": round(bytes_one * 8 / 1000 / args.seconds, 1),
    }))


if __name__ == "__main__":
    main()
