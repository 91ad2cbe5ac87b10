"""A worker that cannot reach Kafka keeps its cameras running; nothing they report is lost.
One that was paused stops the cameras the group moved as soon as it wakes.

A frozen broker (SIGSTOP) answers nothing. The worker cannot prove its group generation, but it
cannot tell an outage of all of Kafka from being cut off alone either, and stopping would blind
every camera for the length of the outage. So it keeps analysing, its events wait in the
outbox, and when the broker thaws they reach the dispatch topic: none dropped by the merge
stage's generation fence, since no one else ran the cameras meanwhile.
"""
from __future__ import annotations

import asyncio
import json
import signal
import time
from datetime import datetime

import httpx

from tests.cluster_harness import CLIP_S, cameras_of, ownership, parse, publish_cameras, records, worker
from tests.service_proc import wait_for

SESSION_S = 6.0  # cluster_section's session_timeout_ms
FROZEN_S = 2 * SESSION_S


async def test_worker_keeps_its_cameras_through_a_kafka_outage(tmp_path, kafka_broker):
    b = kafka_broker.bootstrap
    publish_cameras(tmp_path, b, 2)
    w = worker(tmp_path, b, "w1")
    async with w:
        async def running():
            cams = await cameras_of(w)
            return {c["id"]: c["frames_analysed"] for c in cams} if len(cams) == 2 and all(
                c["frames_analysed"] >= 1 for c in cams) else None
        await wait_for(running, 90, "both cameras analysing on w1")
        # Freeze while the clip's second stay is under way: its incidents update every 5 s.
        while not 24.0 <= time.time() % CLIP_S < 28.0:
            await asyncio.sleep(0.2)
        before = await running()

        kafka_broker.freeze()
        frozen_at = time.time()
        try:
            await asyncio.sleep(FROZEN_S)
            during = await running()
        finally:
            kafka_broker.thaw()
        thawed_at = time.time()
        assert during is not None, "a camera stopped while Kafka was unreachable"
        assert all(during[c] > before[c] + 3 for c in before), (before, during)
        unproven = [json.loads(ln) for ln in w.log().splitlines() if '"cluster.proof_failed"' in ln]
        assert unproven, "no cluster.proof_failed while the broker was frozen"
        assert '"cluster.fenced"' not in w.log()

        # Back: the events of the outage reach the dispatch topic, and the worker proves its generation again.
        async def delivered():
            evs = [e for e in parse(await records(b, "xueliang.events"))
                   if frozen_at <= datetime.fromisoformat(e["occurred_at"]).timestamp() <= thawed_at]
            return evs if {e["source"]["camera_id"] for e in evs} == set(before) else None
        evs = await wait_for(delivered, 60, "the events of the outage in the dispatch topic", proc=w.proc)
        print(f"{len(evs)} events from the {FROZEN_S:.0f} s outage delivered: {sorted({e['status'] for e in evs})}")

        async def proven():
            async with httpx.AsyncClient(base_url=w.base, headers=w.headers, timeout=5) as api:
                text = (await api.get("/metrics")).text
            return "xueliang_cluster_unproven_seconds 0.0" in text and await running()
        await wait_for(proven, 60, "w1 proving its generation again with both cameras running", proc=w.proc)
        assert "merge.fenced" not in w.log()


async def test_paused_worker_stops_its_cameras_as_it_wakes(tmp_path, tansu):
    """SIGSTOP a worker past its session timeout: the group (Tansu expires sessions) moves its
    cameras, and when it wakes its first commit or heartbeat is refused and it stops them."""
    b = tansu.bootstrap
    publish_cameras(tmp_path, b, 4, exactly_once=False)
    workers = {n: worker(tmp_path, b, n, exactly_once=False) for n in ("w1", "w2")}
    async with workers["w1"], workers["w2"]:
        async def spread():
            own = await ownership(workers)
            return own if len(own) == 4 and all(len(v) == 1 for v in own.values()) and len(
                {v[0] for v in own.values()}) == 2 else None
        own = await wait_for(spread, 90, "4 cameras over 2 workers")
        paused = sorted(c for c, ws in own.items() if ws == ["w1"])

        w1 = workers["w1"]
        w1.proc.send_signal(signal.SIGSTOP)
        try:
            async def moved():
                return set(paused) <= {x["id"] for x in await cameras_of(workers["w2"])}
            await wait_for(moved, 30, "w2 running the paused worker's cameras")
        finally:
            w1.proc.send_signal(signal.SIGCONT)
        woke = time.monotonic()

        async def w1_stopped():
            return not ({x["id"] for x in await cameras_of(w1)} & set(paused))
        await wait_for(w1_stopped, 20, "w1 stopping the cameras it lost while paused", proc=w1.proc)
        print(f"w1 stopped its lost cameras {time.monotonic() - woke:.1f} s after it woke")
        # Then it rejoins and the group spreads the cameras again, each on one worker.
        await wait_for(spread, 60, "4 cameras over 2 workers again", proc=w1.proc)
