"""Video ingestion cost against raw PyAV on the same 1080p file, in the same run.

Makes a 1080p H.264 file first (the bundled table clip scaled with libx264, 25 fps, GOP 2 s,
~4 Mbit/s) in a temp dir, then measures CPU seconds per media second, one thread:

raw keyframes:  `container.decode()` with `skip_frame = "NONKEY"`: nothing of ours, and no image.
raw keyframes + BGR: the same, plus `to_ndarray(format="bgr24")` of every keyframe (at GOP 2 s
                and 0.5 fps that is every frame ours analyses): the least any analysis needs.
ours keyframes: a CameraWorker (shared watchdog, counters, sampler, BGR conversion of every
                analysed frame) at 0.5 analysed fps, `decode: auto` -> keyframes only.
raw full:       every frame decoded, none converted.
ours full:      a CameraWorker at 5 analysed fps, `decode: auto` -> every frame decoded, 5/s converted.
RSS per stream: N workers held open, paced (keyframe mode), against N raw containers.

Each CPU measure is the least of `--repeat` interleaved passes.

    python bench/video_decode.py [--seconds 20] [--streams 20] [--repeat 5]
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import threading
import time
from fractions import Fraction
from pathlib import Path

import av

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # this checkout's code, even where another one is pip-installed

from ingest.stream_config import VideoInputConfig  # noqa: E402
from ingest.worker import CameraState, CameraWorker  # noqa: E402

CLIP = REPO / "configs" / "media" / "table-stays.mp4"


def make_1080p(dst: Path, seconds: float, fps: int = 25, gop_s: float = 2.0, bitrate: int = 4_000_000) -> Path:
    """Scale the clip to 1920x1080 at `fps` (frames shown faster than recorded: each one differs)."""
    with av.open(str(CLIP)) as src, av.open(str(dst), "w") as out:
        vs = out.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt, vs.bit_rate = 1920, 1080, "yuv420p", bitrate
        gop = int(fps * gop_s)
        vs.options = {"preset": "veryfast", "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0",
                      "maxrate": str(bitrate), "bufsize": str(bitrate)}
        n = 0
        while n < seconds * fps:
            src.seek(0)
            for f in src.decode(video=0):
                img = f.reformat(width=1920, height=1080, format="yuv420p")
                img.pts, img.time_base = n, Fraction(1, fps)
                img.pict_type = av.video.frame.PictureType.NONE  # else x264 keeps the source's keyframes
                out.mux(vs.encode(img))
                n += 1
                if n >= seconds * fps:
                    break
        out.mux(vs.encode(None))
    return dst


def raw_cpu(path: Path, keyframes_only: bool, convert: bool = False) -> tuple[float, float]:
    """(cpu s, media s) of the plainest PyAV decode loop; `convert`: each picture to BGR too."""
    c0 = time.process_time()
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        s.codec_context.thread_type, s.codec_context.thread_count = "SLICE", 1
        if keyframes_only:
            s.codec_context.skip_frame = "NONKEY"
        last = 0.0
        for f in c.decode(s):
            last = f.time
            if convert:
                f.to_ndarray(format="bgr24")
    return time.process_time() - c0, last


def ours_cpu(path: Path, fps: float) -> tuple[float, float, bool]:
    """(cpu s, media s, keyframes_only) of a CameraWorker over one pass of the file."""
    got: list[float] = []
    w = CameraWorker("bench", str(path), fps, lambda fr: got.append(fr.media_time_s), realtime=False, loop=False,
                     video=VideoInputConfig(decode="auto"))
    c0 = time.process_time()
    w.start()
    w._thread.join()
    cpu = time.process_time() - c0
    w.stop()
    return cpu, (got[-1] if got else 0.0), w.status.keyframes_only


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def ours_rss(path: Path, n: int, settle_s: float) -> float:
    base = rss_mb()
    workers = [CameraWorker(f"c{i}", str(path), 0.5, lambda fr: None, realtime=True, loop=True) for i in range(n)]
    for w in workers:
        w.start()
    time.sleep(settle_s)
    online = sum(w.status.state is CameraState.ONLINE for w in workers)
    per = (rss_mb() - base) / n
    for w in workers:
        w.stop()
    assert online == n, f"only {online}/{n} workers online"
    return per


def raw_rss(path: Path, n: int) -> float:
    """N open containers, each having decoded its first keyframe (decoder buffers allocated)."""
    base = rss_mb()
    held = []
    for _ in range(n):
        c = av.open(str(path))
        s = c.streams.video[0]
        s.codec_context.thread_type, s.codec_context.thread_count = "SLICE", 1
        s.codec_context.skip_frame = "NONKEY"
        f = next(c.decode(s))
        held.append((c, f.to_ndarray(format="bgr24")))
    per = (rss_mb() - base) / n
    for c, _ in held:
        c.close()
    return per


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=20.0, help="length of the generated 1080p file")
    ap.add_argument("--streams", type=int, default=20, help="streams held open for the RSS measure")
    ap.add_argument("--repeat", type=int, default=5, help="passes per CPU measure; the least is kept")
    args = ap.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, "
          f"load {os.getloadavg()[0]:.2f}, PyAV {av.__version__}, threads alive {threading.active_count()}")
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        path = make_1080p(Path(tmp) / "1080p.mp4", args.seconds)
        mbps = path.stat().st_size * 8 / args.seconds / 1e6
        with av.open(str(path)) as c:
            keys = [p.pts for p in c.demux(video=0) if p.is_keyframe and p.size]
        gop = args.seconds / len(keys)
        print(f"made {path.name}: 1920x1080 25 fps, a keyframe every {gop:.2f} s, {mbps:.1f} Mbit/s, "
              f"in {time.perf_counter() - t0:.1f} s")
        rows = []
        for label, raw_key, fps in [("keyframes", True, 0.5), ("full decode", False, 5.0)]:
            # Each measure `--repeat` times, interleaved, the least CPU kept: one pass of a 20 s
            # file is a fraction of a CPU second, and other processes' noise only ever adds.
            raw_c = conv_c = our_c = float("inf")
            for _ in range(args.repeat):
                c, raw_m = raw_cpu(path, raw_key)
                raw_c = min(raw_c, c)
                if raw_key:
                    c, conv_m = raw_cpu(path, True, convert=True)
                    conv_c = min(conv_c, c)
                c, our_m, key = ours_cpu(path, fps)
                our_c = min(our_c, c)
                assert key == raw_key, f"auto decode chose keyframes_only={key} at {fps} fps"
            raw_spc, our_spc = raw_m / raw_c, our_m / our_c
            rows.append((label, raw_spc, our_spc))
            print(f"{label:12s} streams/core  raw PyAV {raw_spc:7.1f}  ours {our_spc:7.1f}  "
                  f"ratio {our_spc / raw_spc:.2f}  (ours analyses {fps} fps)")
            if raw_key:
                conv_spc = conv_m / conv_c
                print(f"{'':12s} streams/core  raw PyAV + BGR of each keyframe {conv_spc:7.1f}  "
                      f"ratio {our_spc / conv_spc:.2f}")
        raw_r = raw_rss(path, args.streams)
        our_r = ours_rss(path, args.streams, settle_s=6.0)
        print(f"RSS per stream ({args.streams} streams, 1080p, keyframe mode): raw PyAV {raw_r:.1f} MB  "
              f"ours {our_r:.1f} MB  ratio {our_r / raw_r:.2f}")
        print(f"load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
