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
