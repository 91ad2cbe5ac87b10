"""Decode only what is analysed: keyframes alone while they meet the analysis rate."""
from __future__ import annotations

from ingest.video import DecodeObserver, iter_frames
from tests.helpers import REPO

CLIP = str(REPO / "configs" / "media" / "table-stays.mp4")  # 10 fps, a keyframe every 1.0 s, 47 s


class Counts(DecodeObserver):
    def __init__(self) -> None:
        self.packets = self.pictures = 0
        self.modes: list[bool] = []

    def packet(self, keyframe: bool) -> None:
        self.packets += 1

    def decoded(self) -> None:
        self.pictures += 1

    def mode(self, keyframes_only: bool) -> None:
        self.modes.append(keyframes_only)


def test_auto_decodes_keyframes_only_when_they_meet_the_analysis_rate():
    obs = Counts()
    frames = list(iter_frames("t", CLIP, 1.0, decode="auto", observer=obs))
    # The first GOP's packets wait, undecoded, until the second keyframe shows the keyframe rate;
    # then only keyframes are decoded, the first GOP's included: 47 pictures out of 470 packets.
    assert obs.pictures == 47 < obs.packets == 470
    assert obs.modes == [True]
    assert len(frames) == 47 and all(f.keyframe for f in frames)
    times = [f.media_time_s for f in frames]
    assert all(0.9 <= b - a <= 1.1 for a, b in zip(times, times[1:]))


def test_auto_decodes_every_frame_but_converts_only_sampled_ones_above_the_keyframe_rate():
    obs = Counts()
    frames = list(iter_frames("t", CLIP, 2.0, decode="auto", observer=obs))
    assert obs.modes[-1] is False
    assert obs.pictures == 470 and obs.modes == [False]  # every frame decoded, from the start
    assert 92 <= len(frames) <= 94


def test_forced_modes():
    all_, key = Counts(), Counts()
    assert len(list(iter_frames("t", CLIP, 2.0, decode="all", observer=all_))) == 94
    assert all_.pictures == 470 and all_.modes == [False]
    assert len(list(iter_frames("t", CLIP, 2.0, decode="keyframes", observer=key))) == 47
    assert key.pictures == 47


def b_frame_clip(dst, seconds: int = 6, fps: int = 10) -> str:
    """The table clip re-encoded small with B-frames (x264 default), a keyframe every second."""
    import av
    from fractions import Fraction

    with av.open(CLIP) as src, av.open(str(dst), "w") as out:
        vs = out.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = 320, 180, "yuv420p"
        vs.options = {"preset": "veryfast", "bf": "2", "x264-params": f"keyint={fps}:min-keyint={fps}:scenecut=0"}
        for n, f in enumerate(src.decode(video=0)):
            if n >= seconds * fps:
                break
            img = f.reformat(width=320, height=180, format="yuv420p")
            img.pts, img.time_base = n, Fraction(1, fps)
            img.pict_type = av.video.frame.PictureType.NONE
            out.mux(vs.encode(img))
        out.mux(vs.encode(None))
    return str(dst)


def test_keyframes_come_out_with_their_own_packet_not_after_the_reorder_delay(tmp_path):
    """With B-frames the decoder holds pictures back (two keyframes, here 2 s, with skip_frame
    alone); in keyframe mode each keyframe is drained at once, and is the same picture."""
    import numpy as np

    path = b_frame_clip(tmp_path / "bframes.mp4")
    obs = Counts()
    seen = [(f, obs.packets) for f in iter_frames("t", path, 1.0, decode="keyframes", observer=obs)]
    assert len(seen) == 6
    for k, (f, packets) in enumerate(seen):
        assert f.media_time_s == k and packets == 10 * k + 1  # yielded right after its own packet
    full = {f.media_time_s: f.image for f in iter_frames("t", path, 1.0, decode="all")}
    assert all(np.array_equal(f.image, full[f.media_time_s]) for f, _ in seen)
