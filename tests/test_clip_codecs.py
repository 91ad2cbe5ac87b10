"""Evidence clips for codecs MP4 cannot hold: an AVI in MS-MPEG4v2, as a new user would try it.

The clip goes into a container that holds the codec (here AVI); where none does, the incident
has no clip, one warning names the camera and the codec, and analysis goes on."""
from __future__ import annotations

import hashlib
import io
import json
from fractions import Fraction

import av
import pytest
import yaml
from structlog.testing import capture_logs

from ingest import clips
from tests.helpers import DATA_DIR, REPO, TABLE_CLIP, xueliang
from xueliang.config import load_config
from xueliang.replay import replay


@pytest.fixture(scope="module")
def msmpeg4v2_avi(tmp_path_factory):
    """The table clip's first 24 s (one stay, 7.5-18.5 s) re-encoded as MS-MPEG4v2 in AVI."""
    dst = tmp_path_factory.mktemp("avi") / "table-msmpeg4v2.avi"
    with av.open(str(TABLE_CLIP)) as inp, av.open(str(dst), "w") as out:
        vin = inp.streams.video[0]
        v = out.add_stream("msmpeg4v2", rate=10)
        v.width, v.height, v.pix_fmt = vin.codec_context.width, vin.codec_context.height, "yuv420p"
        v.bit_rate, v.options = 3_000_000, {"g": "10"}  # the default 200 kb/s blurs the person away
        n = 0
        for f in inp.decode(vin):
            if f.time >= 24.0:
                break
            frame = av.VideoFrame.from_ndarray(f.to_ndarray(format="bgr24"), format="bgr24")
            frame.pts, frame.time_base = n, Fraction(1, 10)
            for p in v.encode(frame):
                out.mux(p)
            n += 1
        for p in v.encode():
            out.mux(p)
    with av.open(str(dst)) as c:
        assert c.streams.video[0].codec_context.name == "msmpeg4v2"
    return dst


def config_file(tmp_path, source) -> str:
    raw = yaml.safe_load((REPO / "configs" / "examples" / "table-dwell.yaml").read_text())
    raw["cameras"][0]["url"] = str(source)
    raw["cameras"][0]["analysis_fps"] = 2
    raw["grid"]["path"] = str(REPO / "configs" / "grids" / "demo-district.geojson")
    raw["evidence"] = {"dir": str(tmp_path / "evidence")}
    path = tmp_path / "table-avi.yaml"
    path.write_text(yaml.safe_dump(raw))
    return str(path)


def test_replay_of_an_msmpeg4v2_avi_gets_its_clip_in_avi(tmp_path, msmpeg4v2_avi):
    res = xueliang("replay", "-c", config_file(tmp_path, msmpeg4v2_avi), "--camera", "table",
                   "--start", "2026-11-22T08:00:00+08:00", timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "does not support" not in res.stderr
    events = [json.loads(line) for line in res.stdout.splitlines() if line.strip()]
    opened = [e for e in events if e["status"] == "opened"]
    with_clip = [e for e in events if e["evidence"].get("clip")]
    assert len(opened) == 1 and len(with_clip) == 1, [(e["status"], e["evidence"]) for e in events]
    url = with_clip[0]["evidence"]["clip"]
    assert url.endswith(".avi")
    data = (tmp_path / "evidence" / url.rsplit("/", 1)[1]).read_bytes()
    assert hashlib.sha256(data).hexdigest() == with_clip[0]["evidence"]["sha256"]["clip"]
    with av.open(io.BytesIO(data)) as c:
        v = c.streams.video[0]
        assert v.codec_context.name == "msmpeg4v2"  # the camera's own packets, not re-encoded
        frames = list(c.decode(v))
    assert frames[0].key_frame and 100 <= len(frames) <= 180  # ~10 s before the opening to 5 s after, 10 fps


def test_no_container_for_the_codec_means_no_clip_and_one_warning(tmp_path, msmpeg4v2_avi, monkeypatch):
    monkeypatch.setattr(clips, "CONTAINERS", (("mp4", "mp4"),))  # as if only MP4 existed
    cfg = load_config(config_file(tmp_path, msmpeg4v2_avi))
    cfg.data_dir = DATA_DIR
    out = io.StringIO()
    with capture_logs() as logs:
        replay(cfg, "table", out)
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [e["status"] for e in events].count("opened") == 1  # analysis went on
    assert not any(e["evidence"].get("clip") for e in events)
    warned = [entry for entry in logs if entry["event"] == "clip.codec_unsupported"]
    assert len(warned) == 1 and warned[0]["camera"] == "table" and warned[0]["codec"] == "msmpeg4v2"
