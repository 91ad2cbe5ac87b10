"""`make demo`'s script end to end: Mosquitto, the sensor simulator and the service start
together, the bundled clip and the simulated sensors both produce incidents, and a TERM to the
script (what a process manager sends) stops every process it started."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from tests.brokers import free_port
from tests.helpers import DATA_DIR, REPO

DEMO_TOKEN = "xl_demo_only-for-make-demo-never-in-production"  # configs/demo.yaml, demo only


@pytest.mark.skipif(not Path("/usr/sbin/mosquitto").exists(), reason="the demo's sensors need mosquitto")
def test_demo_script_shows_camera_and_sensor_incidents_and_stops_on_term(tmp_path):
    port = free_port()
    env = {**os.environ, "BIN": str(Path(sys.executable).parent), "DEMO_MQTT_PORT": str(free_port()),
           "XUELIANG_DATA_DIR": str(DATA_DIR), "XUELIANG__API__PORT": str(port),
           "XUELIANG__OUTBOX__PATH": str(tmp_path / "outbox.sqlite3"),
           "XUELIANG__EVIDENCE__DIR": str(tmp_path / "evidence"),
           "XUELIANG__API__CONSOLE_DB": str(tmp_path / "console.sqlite3"),
           "XUELIANG__API__AUTH__TOKENS_FILE": str(tmp_path / "tokens.yaml"),
           "XUELIANG__SENSORS__DEADLETTERS__PATH": str(tmp_path / "deadletters.sqlite3")}
    log = open(tmp_path / "demo.log", "wb")
    script = subprocess.Popen(["bash", "scripts/demo.sh"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    started: list[psutil.Process] = []
    try:
        deadline, kinds = time.monotonic() + 120, set()
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5,
                          headers={"Authorization": f"Bearer {DEMO_TOKEN}"}) as api:
            while time.monotonic() < deadline and kinds != {"video", "iot"}:
                assert script.poll() is None, (tmp_path / "demo.log").read_text()[-3000:]
                started = psutil.Process(script.pid).children(recursive=True) or started
                try:
                    events = api.get("/events").json()["events"]
                except httpx.TransportError:
                    events = []
                kinds = {e["source"]["kind"] for e in events}
                time.sleep(1)
        assert kinds == {"video", "iot"}, f"incidents from {kinds} only; log: {(tmp_path / 'demo.log').read_text()[-3000:]}"
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30,
                          headers={"Authorization": f"Bearer {DEMO_TOKEN}"}) as api:
            video = b""  # the demo camera live (configs/demo.yaml: live.enabled), as the camera wall plays it
            with api.stream("GET", "/cameras/demo-table/live.mp4") as r:
                assert r.status_code == 200, r.read()
                for chunk in r.iter_bytes():
                    video += chunk
                    if len(video) > 50_000:
                        break
            assert video[4:8] == b"ftyp" and b"moof" in video
        started = psutil.Process(script.pid).children(recursive=True)
        assert len(started) >= 4, started  # mosquitto, the simulator, the service, its restreamer

        script.send_signal(signal.SIGTERM)
        assert script.wait(timeout=40) is not None
        gone, alive = psutil.wait_procs(started, timeout=10)
        assert not alive, f"still running after the script stopped: {alive}"
    finally:
        for p in started:
            if p.is_running():
                p.kill()
        if script.poll() is None:
            script.kill()
        log.close()
