"""Cluster feedback routing without a broker: three workers' handlers, each on its own real
outbox, resolving a merged incident through a shared lookup (what `IncidentDirectory` reads from
the dispatch topic). The three-worker run on a real broker is tests/test_cluster_feedback.py."""
from __future__ import annotations

import asyncio
import time
from datetime import datetime

from bridge.bridge_config import FeedbackConfig
from bridge.feedback.messages import SuppressionGate, VerifyRequest, WorkOrderClosed, key_of
from bridge.merging.rewrite import MergeConfig, MergeStage
from bridge.store.outbox import EventStore
from bridge.feedback.verify import verification_event
from tests.test_merge_stage import camera, event
from bridge.feedback.handler import FeedbackHandler


async def test_only_the_owner_answers_across_a_rebalance_and_every_worker_suppresses(tmp_path):
    stage = MergeStage(MergeConfig(radius_m=50, window_s=300))
    a, b = camera("a", 0), camera("b", 30)
    merged = [stage.apply(e) for e in (event(a, "opened", "a1", 0), event(b, "opened", "b1", 20),
                                       event(a, "cleared", "a1", 40))]
    directory = {merged[-1].incident_id: merged[-1].model_dump(mode="json")}  # a1: a gone, b still sees it

    async def lookup(iid):
        return directory.get(iid)

    answered: set[str] = set()  # request ids whose answer is on the dispatch topic
    runs = {"w1": {"a"}, "w2": {"b"}, "w3": set()}
    stores, gates, handlers, published = {}, {}, {}, []
    for w in runs:
        stores[w], gates[w] = EventStore(tmp_path / f"{w}.db"), SuppressionGate()

        async def publish(ev, w=w):
            published.append((w, ev))
        handlers[w] = FeedbackHandler(FeedbackConfig(verify_timeout_s=30), stores[w], gates[w],
                                      lambda w=w: runs[w], publish, lookup=lookup,
                                      answered_elsewhere=answered.__contains__)
    try:
        now = time.time()
        for h in handlers.values():  # every worker hears every message
            await h(VerifyRequest(type="verify_request", incident_id="a1", request_id="r1"), now)
        # All pick camera b (the one that still sees it); only w2 runs it.
        [r1] = handlers["w2"].take("b")
        assert r1.request_id == "r1"
        assert handlers["w1"].take("b") == [] and handlers["w3"].take("b") == []
        await handlers["w2"].answered(r1, verification_event(r1, datetime.now().astimezone(), True))
        answered.add("r1")

        # A second request, then b moves from w2 to w3 before a frame answered it.
        for h in handlers.values():
            await h(VerifyRequest(type="verify_request", incident_id="a1", request_id="r2"), now)
        handlers["w2"].released(["b"])
        runs["w2"], runs["w3"] = set(), {"b"}
        handlers["w3"].assigned(["b"])
        assert handlers["w2"].take("b") == []
        [p] = handlers["w3"].take("b")  # r1 was watched there too, but w2 answered it
        assert p.request_id == "r2"

        # A closed order: every worker holds back b's and a's next incidents, whoever runs them.
        for h in handlers.values():
            await h(WorkOrderClosed(type="work_order_closed", incident_id="a1", suppress_s=600), now)
        for w in runs:
            assert set(gates[w].until) == {key_of(event(a, "opened", "x", 0)), key_of(event(b, "opened", "x", 0))}
            assert gates[w].check(event(b, "opened", "b2", 100), now) is not None
            assert set(await stores[w].suppressions(now)) == set(gates[w].until)  # kept over a restart
        await asyncio.sleep(0)
        assert [(w, ev.verification.request_id) for w, ev in published] == [("w2", "r1")]
    finally:
        for w in runs:
            handlers[w].close()
            stores[w].close()
