"""A worker that cannot reach Kafka keeps its cameras running; nothing they report is lost.

A frozen broker (SIGSTOP) answers nothing. The worker cannot prove its group generation, but it
cannot tell an outage of all of Kafka from being cut off alone either, and stopping would blind
every camera for the length of the outage. So it keeps analysing, its events wait in the
outbox, and when the broker thaws they reach the dispatch topic: none dropped by the merge
stage's generation fence, since no one else ran the cameras meanwhile.
"""
from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime

import httpx

from tests.cluster_harness import CLIP_S, cameras_of, parse, publish_cameras, records, worker
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
