"""The restreamer child under its supervisor: it serves a password-protected RTSP camera as
fragmented MP4 through the proxy, comes back after it is killed, keeps its config (with the
credentials) private and gone after the stop, and logs nothing with a password in it."""
from __future__ import annotations

import asyncio
import os
import stat
import time

import pytest
import structlog

from bridge.http.live.live_config import LiveConfig
from bridge.http.live.supervisor import LiveUnavailable, Restreamer, go2rtc_config
from tests.brokers import free_port
from tests.helpers import TABLE_CLIP
from tests.rtsp import RtspServer

PASSWORD = "Sup3rvised-pw"


async def _until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


async def _mp4_head(rs: Restreamer, camera_id: str, size: int = 20_000) -> bytes:
    deadline = time.monotonic() + 30
    while True:  # the child takes a moment to listen after it starts
        try:
            body = await rs.stream(camera_id)
            break
        except LiveUnavailable:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)
    data = b""
    async for chunk in body:
        data += chunk
        if len(data) >= size:
            break
    await body.aclose()
    return data


async def test_restreamer_serves_restarts_and_keeps_credentials_private():
    with RtspServer({"cam": TABLE_CLIP}, credentials=("admin", PASSWORD)) as rtsp:
        cameras = {"cam": rtsp.url("cam"), "down": f"rtsp://admin:{PASSWORD}@127.0.0.1:{free_port()}/x"}
        rs = Restreamer(LiveConfig(enabled=True, restart_backoff_s=0.2, idle_close_s=1), cameras)
        with structlog.testing.capture_logs() as logs:
            task = asyncio.create_task(rs.run())
            try:
                head = await _mp4_head(rs, "cam")
                assert head[4:8] == b"ftyp" and b"moov" in head and b"moof" in head
                config = next(rs._dir.iterdir())
                assert stat.S_IMODE(config.stat().st_mode) == 0o600
                # Its own API is not open to other local users: no password, no video.
                reader, writer = await asyncio.open_connection("127.0.0.1", rs.port)
                writer.write(b"GET /api/stream.mp4?src=cam HTTP/1.1\r\nHost: x\r\n\r\n")
                assert (await reader.readline()).split()[1] == b"401"
                writer.close()
                down = await rs.stream("down")  # a camera that cannot be reached: the stream just ends
                assert [c async for c in down] == []
                with pytest.raises(LiveUnavailable):
                    await rs.stream("not-a-camera")

                first = rs.proc.pid
                os.kill(first, 9)  # the child dies: the supervisor starts it again
                await _until(lambda: rs.starts == 2 and rs.proc.pid != first, 20, "the restart")
                assert (await _mp4_head(rs, "cam"))[4:8] == b"ftyp"
            finally:
                folder = rs._dir
                await rs.stop()
                await asyncio.wait_for(task, 10)
        assert rs.proc.returncode is not None and not folder.exists()
    events = [e["event"] for e in logs]
    assert events.count("live.restreamer_started") == 2 and "live.restreamer_exited" in events
    assert "live.source_failed" in events  # the unreachable camera, its URL redacted
    assert PASSWORD not in repr(logs)


def test_go2rtc_config_listens_on_loopback_only_and_names_streams_by_camera():
    doc = go2rtc_config({"cam-1": "rtsp://u:p@10.0.0.9/s"}, 18555, 0, 18556, "pw")
    assert doc["api"]["listen"] == "127.0.0.1:18555" and doc["webrtc"]["listen"] == "127.0.0.1:18556"
    assert doc["api"]["password"] == "pw"
    assert doc["rtsp"]["listen"] == "" and list(doc["streams"]) == ["cam-1"]
    rs = Restreamer(LiveConfig(enabled=True, server="go2rtc", go2rtc_binary="/nonexistent/go2rtc"),
                    {"cam-1": "rtsp://u:p@10.0.0.9/s", "file-cam": "media/clip.mp4"})
    assert not rs.serves("file-cam")  # go2rtc reads no plain files
    try:
        with pytest.raises(LiveUnavailable, match="live.go2rtc_binary"):
            rs.command(rs.write_config())
    finally:
        asyncio.run(rs.stop())
