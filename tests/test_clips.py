"""Evidence clips: cut from the ring of encoded packets, remuxed without re-encoding."""
from __future__ import annotations

import hashlib
import io
import json

import av

from ingest.clips import PacketRing
from ingest.video import iter_frames
from tests.helpers import DATA_DIR, REPO
from xueliang.config import load_config
from xueliang.replay import replay

CLIP = REPO / "configs" / "media" / "table-stays.mp4"  # 10 fps, a keyframe every second


def packets_of(data: bytes) -> list[bytes]:
    with av.open(io.BytesIO(data)) as c:
        return [bytes(p) for p in c.demux(video=0) if p.size]


def test_cut_is_the_original_packets_from_a_keyframe():
    ring = PacketRing(keep_s=30)
    list(iter_frames("t", str(CLIP), 2.0, ring=ring))
    clip = ring.cut(20.5, 35.0)
    assert clip.ext == "mp4"
    with av.open(io.BytesIO(clip.data)) as c:
        frames = list(c.decode(video=0))
    assert frames[0].key_frame and 140 <= len(frames) <= 160  # from the keyframe at 20 s to 35 s
    with av.open(str(CLIP)) as src:
        s = src.streams.video[0]
        original = [bytes(p) for p in src.demux(s) if p.size and 20.0 - 1e-6 <= float(p.pts * s.time_base) <= 35.0]
    assert packets_of(clip.data) == original  # byte for byte: remuxed, never re-encoded


def test_ring_keeps_only_its_window():
    ring = PacketRing(keep_s=5)
    list(iter_frames("t", str(CLIP), 2.0, ring=ring))
    clip = ring.cut(0.0, 100.0)  # asks for everything, gets the last ~5 s from a keyframe
    with av.open(io.BytesIO(clip.data)) as c:
        assert 40 <= sum(1 for _ in c.decode(video=0)) <= 60


def test_each_incident_gets_a_clip_in_an_update(tmp_path):
    cfg = load_config(REPO / "configs" / "examples" / "table-dwell.yaml")
    cfg.cameras[0].analysis_fps = 2
    cfg.evidence.dir = tmp_path
    cfg.data_dir = DATA_DIR
    out = io.StringIO()
    replay(cfg, "table", out, source=str(CLIP))  # the bundled 47 s cut: two stays
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    opened = {e["incident_id"]: e for e in events if e["status"] == "opened"}
    clips = [e for e in events if e["evidence"].get("clip")]
    assert len(opened) == 2 and {e["incident_id"] for e in clips} == set(opened)
    for ev in clips:
        assert ev["status"] == "updated"
        assert ev["source"]["media_time_s"] >= opened[ev["incident_id"]]["source"]["media_time_s"] + 5.0
        data = (tmp_path / ev["evidence"]["clip"].rsplit("/", 1)[1]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == ev["evidence"]["sha256"]["clip"]
        with av.open(io.BytesIO(data)) as c:
            v = c.streams.video[0]
            assert 14.0 <= float(v.duration * v.time_base) <= 17.0  # ~10 s before to 5 s after
