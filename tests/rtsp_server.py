"""A real RTSP server for tests: GStreamer's rtsp-server looping an mp4's H.264 without re-encoding.

Run by the SYSTEM python (`/usr/bin/python3`, which has `gi`), not the project venv:

    /usr/bin/python3 tests/rtsp_server.py --port 8554 --mount cam=path/to/clip.mp4 [--mount ...]

Each mp4 is demuxed once into memory; a shared media per mount feeds the H.264 access units to an
`appsrc` with timestamps rewritten so the file repeats forever (~2 % CPU). `filesrc ! qtdemux` would
play only once, and `multifilesrc loop=true` on raw H.264 is broken. Prints `READY <port>` when it
listens. The harness kills, freezes (SIGSTOP) and restarts this process to test reconnects.
"""
from __future__ import annotations

import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

CAPS = "video/x-h264,stream-format=byte-stream,alignment=au"


def demux(path: str) -> list[tuple[int, int, bytes, bool]]:
    """(pts ns, duration ns, access unit, keyframe) for every sample; SPS/PPS repeated at each IDR."""
    pipe = Gst.parse_launch(
        f'filesrc location="{path}" ! qtdemux ! h264parse config-interval=-1 ! {CAPS} '
        "! appsink name=sink sync=false emit-signals=false"
    )
    sink = pipe.get_by_name("sink")
    pipe.set_state(Gst.State.PLAYING)
    samples = []
    while True:
        sample = sink.emit("pull-sample")
        if sample is None:
            break
        buf = sample.get_buffer()
        ok, info = buf.map(Gst.MapFlags.READ)
        if ok:
            key = not buf.has_flags(Gst.BufferFlags.DELTA_UNIT)
            samples.append((buf.pts, buf.duration, bytes(info.data), key))
            buf.unmap(info)
    pipe.set_state(Gst.State.NULL)
    if not samples:
        raise SystemExit(f"no H.264 samples in {path}")
    return samples


class LoopFactory(GstRtspServer.RTSPMediaFactory):
    def __init__(self, samples):
        super().__init__()
        self.samples = samples
        first = samples[0][0]
        last_pts, last_dur = samples[-1][0], samples[-1][1]
        self.span = (last_pts - first) + (last_dur or 40_000_000)
        self.first = first
        self.set_shared(True)  # many clients on one mount share one pipeline: cheap load tests
        self.set_launch(
            f"( appsrc name=src is-live=true format=time caps={CAPS} ! h264parse "
            "! rtph264pay name=pay0 pt=96 config-interval=1 )"
        )

    def do_configure(self, media):
        src = media.get_element().get_child_by_name("src")
        state = {"i": 0, "loop": 0}

        def need_data(appsrc, _length):
            pts, dur, data, key = self.samples[state["i"]]
            buf = Gst.Buffer.new_wrapped(data)
            buf.pts = buf.dts = (pts - self.first) + state["loop"] * self.span
            buf.duration = dur
            if not key:
                buf.set_flags(Gst.BufferFlags.DELTA_UNIT)
            appsrc.emit("push-buffer", buf)
            state["i"] += 1
            if state["i"] == len(self.samples):
                state["i"], state["loop"] = 0, state["loop"] + 1

        src.connect("need-data", need_data)


ROLE = "camera-user"


def require_password(server, user: str, password: str) -> None:
    """RTSP basic auth: a client without these credentials gets 401 on every mount."""
    auth = GstRtspServer.RTSPAuth()
    token = GstRtspServer.RTSPToken()
    token.set_string("media.factory.role", ROLE)
    auth.add_basic(GstRtspServer.RTSPAuth.make_basic(user, password), token)
    server.set_auth(auth)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--mount", action="append", required=True, help="NAME=FILE.mp4, served at /NAME")
    ap.add_argument("--user", help="USER:PASSWORD: every mount then needs these (RTSP basic auth), as cameras do")
    args = ap.parse_args()
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address(args.host)
    server.set_service(str(args.port))
    mounts = server.get_mount_points()
    if args.user:
        require_password(server, *args.user.split(":", 1))
    for spec in args.mount:
        name, _, path = spec.partition("=")
        factory = LoopFactory(demux(path))
        if args.user:
            factory.add_role_from_structure(Gst.Structure.from_string(
                f"{ROLE}, media.factory.access=(boolean)true, media.factory.construct=(boolean)true")[0])
        mounts.add_factory(f"/{name}", factory)
    if server.attach(None) == 0:
        raise SystemExit(f"cannot listen on {args.host}:{args.port}")
    loop = GLib.MainLoop()
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, loop.quit)
    print(f"READY {args.port}", flush=True)
    loop.run()
    sys.exit(0)


if __name__ == "__main__":
    main()
