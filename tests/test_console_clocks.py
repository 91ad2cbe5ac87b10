"""The loop's clocks end to end: work-order states sent on the platform's feedback topic (a real
Kafka-protocol broker, noida-db) to `xueliang run`, and the console's light for the incident, in
headless Chromium, turning green, yellow, red as its clock passes; the time is set by the test
(the page's and API's `at`: the clocks evaluated at that instant). Then handled and verified in
time: done, on time, counted in the street's and category's on-time rate. The map's light for the
incident is the list's (one function)."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import httpx
from aiokafka import AIOKafkaProducer

from tests.brokers import NoidaKafka
from tests.service_proc import ServiceProcess, feedback_config, wait_for
from tests.test_console_e2e import SHOTS, doc_screenshot
from tests.test_page import DEMO_TOKEN, browser, login  # noqa: F401  (fixture)

ACCEPT_S, HANDLE_S, VERIFY_S = 600, 3600, 1200


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).isoformat()


async def test_work_order_states_turn_the_light_green_yellow_red_and_count_on_time(tmp_path, browser):  # noqa: F811
    broker = NoidaKafka().start()
    producer = None
    try:
        doc = await feedback_config(tmp_path, broker.bootstrap)
        doc["cameras"][0]["analysis_fps"] = 2
        doc["api"]["clocks"] = {"limits": {"market.road-occupation": {
            "accept_s": ACCEPT_S, "handle_s": HANDLE_S, "verify_s": VERIFY_S}}}
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
        await producer.start()

        async def send(incident, state, at):
            msg = {"type": "work_order_state", "incident_id": incident, "state": state, "at": iso(at),
                   "work_order_id": "WO-1"}
            await producer.send_and_wait("grid.feedback", json.dumps(msg).encode())

        async with ServiceProcess(tmp_path, doc) as svc, httpx.AsyncClient(base_url=svc.base, headers=svc.headers,
                                                                            timeout=10) as api:
            async def first():
                return (await api.get("/incidents")).json()["incidents"]

            inc = (await wait_for(first, 60, "a first incident", svc.proc))[-1]
            iid = inc["incident_id"]
            t0 = datetime.fromisoformat(inc["opened_at"]).timestamp()
            await send(iid, "accepted", t0 + 1)
            await send(iid, "dispatched", t0 + 2)

            async def dispatched():
                row = (await api.get("/incidents", params={"incident": iid})).json()["incidents"]
                return row and row[0]["work_order"] == "dispatched"

            await wait_for(dispatched, 30, "the work order's states from the feedback topic", svc.proc)
            now_row = (await api.get("/incidents", params={"incident": iid})).json()["incidents"][0]
            on_map = {i["incident_id"]: i for i in (await api.get("/map/incidents")).json()["incidents"]}
            if iid in on_map:  # still open: the map colours it with the same clock
                assert on_map[iid]["light"] == now_row["light"] == "green"

            page = await browser.new_page(viewport={"width": 1400, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            await login(page, svc.base, DEMO_TOKEN)
            row = f'#events tr[data-incident-id="{iid}"]'
            for dt, light in [(100, "green"), (HANDLE_S * 0.6, "yellow"), (HANDLE_S + 10, "red")]:
                await page.goto(f"{svc.base}/?at={t0 + 1 + dt}")
                await page.wait_for_selector(f'{row}[data-light="{light}"][data-work-order="dispatched"]', timeout=15_000)
            await page.check("#f-overdue")  # red: overdue, and the filter keeps it
            await page.wait_for_selector(f'{row}[data-light="red"]', timeout=15_000)
            await page.click(row)
            await page.wait_for_selector('#clock[data-light="red"]', timeout=15_000)
            assert await page.locator("#work-orders li").count() == 2
            assert (await api.get("/incidents", params={"overdue": "true", "at": t0 + 100})).json()["incidents"] == []

            # handled and verified in time: done, on time, and counted so
            await send(iid, "handled", t0 + 3000)
            await send(iid, "verified", t0 + 3500)

            async def verified():
                r = (await api.get("/incidents", params={"incident": iid, "at": t0 + 99999})).json()["incidents"][0]
                return r if r["work_order"] == "verified" else None

            done = await wait_for(verified, 30, "the verified state", svc.proc)
            assert (done["step"], done["light"], done["verdict"]) == ("done", "green", "on_time")
            rates = (await api.get("/incidents/rates", params={"at": t0 + 99999})).json()
            cat = {c["key"]: c for c in rates["categories"]}["market.road-occupation"]
            assert cat["on_time"] == 1 and cat["late"] >= 0
            street = {s["key"]: s for s in rates["streets"]}[inc["event"]["grid"]["street"]]
            assert street["on_time"] == 1
            await page.goto(f"{svc.base}/?at={t0 + 99999}")
            await page.wait_for_selector(f'{row}[data-light="green"][data-work-order="verified"]', timeout=15_000)
            await page.click("#show-rates")
            await page.wait_for_selector("#rates .rates td.rate", timeout=10_000)
            await page.click(row)
            await page.wait_for_selector('#clock[data-light="green"]', timeout=15_000)
            if SHOTS:
                await doc_screenshot(page, "console-clocks.png")
            assert errors == []
    finally:
        if producer is not None:
            await producer.stop()
        broker.stop()
