"""A real `xueliang run` on a full disk, and the console's Health page re-sending a parked record.

The service analyses the demo clip with its outbox and evidence on an 8 MiB tmpfs. The disk is
filled between the guard's thresholds (evidence refused, events still stored), then to the brim
(events held in memory, `/readyz` 503 with the reason, `/healthz` still 200), then freed: the
service resumes by itself and every held event is stored, in order.
"""
from __future__ import annotations

import sqlite3
from contextlib import closing

import httpx

from bridge.store.parked_records import park_row
from tests.service_proc import ServiceProcess, demo_config, wait_for
from tests.test_disk_full import MIB, fill, small_fs  # noqa: F401  (fixture)
from tests.test_page import browser, login  # noqa: F401  (fixture)


async def test_service_on_a_full_disk_keeps_running_and_resumes(tmp_path, small_fs):  # noqa: F811
    doc = demo_config(tmp_path)
    doc["outbox"]["path"] = str(small_fs / "outbox.sqlite3")
    doc["evidence"]["dir"] = str(small_fs / "evidence")
    doc["disk"] = {"evidence_min_free_bytes": 3 * MIB, "events_min_free_bytes": 1 * MIB, "check_interval_s": 0.5}
    async with ServiceProcess(tmp_path, doc) as svc, httpx.AsyncClient(base_url=svc.base, timeout=10,
                                                                       headers=svc.headers) as api:
        async def events() -> list[dict]:
            return (await api.get("/events", params={"limit": 1000})).json()["events"]

        async def readyz() -> dict:
            return (await api.get("/readyz")).json()

        async def with_snapshot():
            return [e for e in await events() if e["evidence"].get("snapshot")]

        await wait_for(with_snapshot, 90, "an event with its snapshot", svc.proc)

        fill(small_fs / "filler-1", leave_free=2 * MIB)  # between the thresholds
        await wait_for(lambda: _reason(readyz, "evidence_refused"), 30, "/readyz to name the disk guard", svc.proc)
        last = max(e["seq"] for e in await events())

        async def stored_without_evidence():
            return [e for e in await events() if e["seq"] > last and not e["evidence"].get("snapshot")]

        await wait_for(stored_without_evidence, 90, "an event stored without evidence", svc.proc)

        fill(small_fs / "filler-2")  # to the brim
        body = await wait_for(lambda: _held(readyz), 120, "events held in memory", svc.proc)
        assert any("events_held" in r or "outbox cannot be written" in r for r in body["reasons"]), body
        assert (await api.get("/readyz")).status_code == 503
        assert (await api.get("/healthz")).status_code == 200
        assert "xueliang_disk_guard_level 2.0" in (await api.get("/metrics")).text
        before = {e["event_id"] for e in await events()}

        for filler in small_fs.glob("filler-*"):
            filler.unlink()

        async def ready_again():
            r = await api.get("/readyz")
            return r.status_code == 200 and r.json()["outbox_held"] == 0

        await wait_for(ready_again, 60, "the service to resume by itself", svc.proc)
        after = await events()
        assert len({e["event_id"] for e in after} - before) >= body["outbox_held"]  # the held ones are stored
        seqs = sorted(e["seq"] for e in after)
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "no gap in the outbox"
        log = svc.log()
        assert '"disk.guard"' in log and '"disk.resumed"' in log
        assert await svc.stop() == 0


async def _reason(readyz, word: str):
    body = await readyz()
    return body if any(word in r for r in body["reasons"]) else None


async def _held(readyz):
    body = await readyz()
    return body if body["outbox_held"] > 0 else None


async def test_health_page_shows_parked_record_and_admin_resends_it(tmp_path, browser):  # noqa: F811
    async with ServiceProcess(tmp_path, demo_config(tmp_path)) as svc, httpx.AsyncClient(
            base_url=svc.base, timeout=10, headers=svc.headers) as api:
        async def first_event():
            return (await api.get("/events", params={"limit": 1})).json()["events"]

        seq = (await wait_for(first_event, 90, "a first event", svc.proc))[0]["seq"]
        # The dispatcher would park it; here the refusal is written as it would be, on the live outbox.
        with closing(sqlite3.connect(tmp_path / "outbox.sqlite3", timeout=30, isolation_level=None)) as db:
            assert park_row(db, seq, "MessageSizeTooLargeError()", 3)

        page = await browser.new_page(viewport={"width": 1280, "height": 800})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        await login(page, svc.base, svc.token)
        await page.goto(svc.base + "/static/health.html")
        row = page.locator("#parked tr", has_text="MessageSizeTooLargeError()")
        await row.wait_for(timeout=15_000)
        assert await page.locator("#outbox").get_by_text("parked 1").count() == 1
        assert "disk: ok" in await page.locator("#disk-state").inner_text()
        await row.get_by_role("button", name="Re-send").click()
        await page.wait_for_function("() => document.querySelectorAll('#parked tr').length === 0", timeout=15_000)
        assert (await api.get("/outbox/parked")).json()["count"] == 0
        assert (await api.get("/readyz")).json()["outbox_parked"] == 0
        audit = (await api.get("/audit")).json()
        assert (audit[0]["action"], audit[0]["detail"]) == ("outbox.resend", {"seqs": [seq]})
        assert errors == []
