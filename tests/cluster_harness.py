"""Workers of one cluster as real processes, and readers of the cluster's topics (tests and bench)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import httpx
import yaml
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from bridge.kafka.topics import read_to_end
from tests.helpers import REPO, xueliang
from tests.service_proc import ServiceProcess, demo_config

CLIP = REPO / "configs" / "media" / "table-stays.mp4"
CLIP_S = 47.0  # its length: with `file_start: wallclock` every camera shows position time % 47 s


def camera(i: int) -> dict:
    """Camera i on the bundled clip, ~450 m from its neighbours (farther than the merge radius)."""
    doc = demo_config(Path("/nonexistent"))["cameras"][0]
    doc.update(id=f"cam-{i:02d}", name=f"test camera {i}", url=str(CLIP), analysis_fps=1,
               location={"lon": 117.002 + 0.005 * (i % 6), "lat": 36.652 + 0.006 * (i // 6), "crs": "wgs84"},
               clip={"enabled": False})
    # 30 cameras keep a 2-core machine busy (a frame every 1.5-6 s each, by the machine and the change gate): a grace
    # of 3 s and two frames bridges one missed detection there, and still ends the first stay before the second.
    doc["rules"][0]["grace_s"] = 3
    return doc


def cluster_section(**over) -> dict:
    return {"control_partitions": 30, "incidents_partitions": 6, "session_timeout_ms": 6000,
            "heartbeat_interval_ms": 1000, "fence_check_s": 1.0, "status_interval_s": 1.0,
            "handover_confirm_s": 3.0, **over}


def publish_cameras(tmp: Path, bootstrap: str, n: int, **cluster) -> None:
    doc = demo_config(tmp, kafka={"bootstrap_servers": bootstrap, "idempotent": cluster.get("exactly_once", True)})
    doc["cameras"] = [camera(i) for i in range(n)]
    doc["cluster"] = cluster_section(**cluster)
    path = tmp / "cameras.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    out = xueliang("cameras", "publish", "-c", str(path), timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]


def worker(tmp: Path, bootstrap: str, name: str, **cluster) -> ServiceProcess:
    home = tmp / name
    home.mkdir(parents=True, exist_ok=True)
    doc = demo_config(home, kafka={"bootstrap_servers": bootstrap, "feedback_topic": None,
                                   "idempotent": cluster.get("exactly_once", True)})
    doc["cameras"] = []
    doc["video"] = {"file_start": "wallclock"}
    doc["cluster"] = {"enabled": True, "worker_id": name, **cluster_section(**cluster)}
    return ServiceProcess(home, doc)


async def cameras_of(svc: ServiceProcess) -> list[dict]:
    async with httpx.AsyncClient(base_url=svc.base, timeout=5, headers=svc.headers) as api:
        r = await api.get("/cameras")
        r.raise_for_status()
        return r.json()


async def ownership(workers: dict[str, ServiceProcess]) -> dict[str, list[str]]:
    """camera id -> the workers that run it now (API of every live worker)."""
    out: dict[str, list[str]] = {}
    for name, svc in workers.items():
        for cam in await cameras_of(svc):
            out.setdefault(cam["id"], []).append(name)
    return out


async def records(bootstrap: str, topic: str) -> list:
    """Every record of a topic now, in offset order per partition; of the transactional dispatch
    topic only committed ones (as the platform reads it)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        meta = await admin.describe_topics([topic])
    finally:
        await admin.close()
    parts = [TopicPartition(topic, p["partition"]) for m in meta for p in m["partitions"]]
    return await read_to_end(bootstrap, parts, committed_only=topic.endswith("events"))


def occurrence(t: float) -> tuple[int, int]:
    """Which stay of which loop an incident opened at Unix time t belongs to (the clip's person
    stays roughly 7.5-18.5 s and 23.5-44 s into each 47 s loop)."""
    return math.floor(t / CLIP_S), 0 if t % CLIP_S < 24.0 else 1


def parse(recs) -> list[dict]:
    return [json.loads(r.value) for r in recs]
