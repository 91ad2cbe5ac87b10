"""The map page in headless Chromium against `xueliang run` with a 10,000-grid layer.

The layer is a 100×100 lattice in GCJ-02 (hierarchical 15-digit codes, street and community
names); the demo camera stands in WGS-84, so the service converts both ways. The clip's first
stay opens an incident through the real pipeline and outbox; the map draws all 10,000 grids
from one request, panning and zooming ask for nothing more, the camera shows as a marker with
its state, and a click on the incident's grid lists it with its light. Load and draw times are
printed (and shown on the page), not asserted: the machine is shared.
"""
from __future__ import annotations

import json

import httpx
import pytest

from bridge.location.coordinates import convert
from tests.grid_lattice import grid_code, write_lattice
from tests.service_proc import ServiceProcess, demo_config, wait_for
from tests.test_console_e2e import SHOTS, doc_screenshot
from tests.test_page import DEMO_TOKEN, browser, login  # noqa: F401  (fixture)

N, LON0, LAT0, CELL = 100, 116.98, 36.63, 0.001


@pytest.mark.timeout(900)  # software WebGL (SwiftShader) on a shared CI machine: minutes, not seconds
async def test_map_draws_10000_grids_and_a_click_lists_the_grids_incidents(tmp_path, browser):  # noqa: F811
    doc = demo_config(tmp_path)
    doc["grid"].update(path=str(write_lattice(tmp_path / "lattice.geojson", n=N, lon0=LON0, lat0=LAT0, cell=CELL)),
                       crs="gcj02")
    doc["cameras"][0]["rules"][0]["grace_s"] = 3600  # the first stay's incident stays open through the test
    cam = doc["cameras"][0]["location"]
    gx, gy = convert(cam["lon"], cam["lat"], cam["crs"], "gcj02")
    expected_grid = grid_code(N, int((gx - LON0) / CELL), int((gy - LAT0) / CELL))
    async with ServiceProcess(tmp_path, doc, ready_timeout_s=180) as svc, \
            httpx.AsyncClient(base_url=svc.base, headers=svc.headers, timeout=60) as api:
        async def first_opened():
            return (await api.get("/events", params={"status": "opened", "limit": 1})).json()["events"]

        event = (await wait_for(first_opened, 120, "the clip's first stay to open an incident", svc.proc))[0]
        assert event["grid"]["code"] == expected_grid  # the camera's WGS-84 point resolved in the GCJ-02 layer
        label = next(f["properties"] for f in (await api.get("/map/grids.geojson")).json()["features"]
                     if f["properties"]["code"] == expected_grid)

        page = await browser.new_page(viewport={"width": 1200, "height": 720})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        layer_requests: list[str] = []
        page.on("request", lambda r: layer_requests.append(r.url) if "/map/grids" in r.url else None)
        await login(page, svc.base, DEMO_TOKEN)
        await page.click("nav a:has-text('Map')")
        await page.wait_for_selector("#map[data-state=ready]", timeout=300_000)
        timings = await page.evaluate("() => MapPage.timings")
        print(f"\nmap of {timings['grids']} grids: {json.dumps(timings)}")
        assert timings["grids"] == N * N and timings["features"] == N * N + 100 + 10 + 1
        drawn = await page.evaluate("() => new Set(MapPage.map.queryRenderedFeatures({layers: ['grid-fill']})"
                                    ".map(f => f.properties.code)).size")
        assert drawn > 0.9 * N * N, f"only {drawn} grids drawn in the first view"

        await page.wait_for_function("() => MapPage.map.queryRenderedFeatures({layers: ['street-label']}).length > 0",
                                     timeout=60_000)  # street names as labels, drawn with the browser's fonts
        # The camera as a marker with its state; the incident as a coloured dot.
        await page.wait_for_selector(".cam-marker.state-online[data-camera=demo-table]", timeout=60_000)
        await page.wait_for_function("() => MapPage.map.queryRenderedFeatures({layers: ['incidents']}).length > 0",
                                     timeout=60_000)

        # A click on the grid (about 9 px wide in the first view) lists its open incidents with their light.
        box = await page.locator("#map").bounding_box()
        pt = await page.evaluate("([x, y]) => MapPage.map.project([x, y])", [label["lx"], label["ly"]])
        await page.mouse.click(box["x"] + pt["x"], box["y"] + pt["y"])
        await page.wait_for_selector(f"#area[data-code='{expected_grid}'][data-state=done]", timeout=60_000)
        item = page.locator(f"#area-incidents li[data-incident='{event['incident_id']}']")
        await item.wait_for(timeout=10_000)
        assert await item.get_attribute("data-light") in ("green", "yellow", "red")
        assert "占道经营" in await item.inner_text()
        assert expected_grid in await page.inner_text("#area h2")
        assert label["street"] in await page.inner_text("#area")
        legend = await page.evaluate("() => [...document.querySelectorAll('#legend [data-light]')]"
                                     ".reduce((n, e) => n + Number(e.textContent), 0)")
        assert legend >= 1

        # Panning (a mouse drag) draws from the layer already loaded: no second request.
        cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        await page.mouse.move(cx, cy)
        await page.mouse.down()
        await page.mouse.move(cx - 150, cy - 90, steps=5)
        await page.mouse.up()
        await page.wait_for_function("() => MapPage.map.loaded() && !MapPage.map.isMoving()", timeout=300_000,
                                     polling=1000)
        assert len(layer_requests) == 1, layer_requests
        if SHOTS:  # zoomed in: grid names and codes, the selected grid, camera and incident, a tooltip
            await page.evaluate("([x, y]) => MapPage.map.jumpTo({center: [x, y], zoom: 16.2})", [label["lx"], label["ly"]])
            await page.wait_for_function("() => MapPage.map.loaded() && !MapPage.map.isMoving()", timeout=600_000,
                                         polling=1000)
            pt = await page.evaluate("([x, y]) => MapPage.map.project([x, y])", [label["lx"], label["ly"]])
            await page.mouse.move(box["x"] + pt["x"] - 260, box["y"] + pt["y"] - 170)  # away from the dot
            await page.wait_for_selector(".grid-tip", timeout=60_000)
            await doc_screenshot(page, "console-map.png")
        assert len(layer_requests) == 1, layer_requests
        assert errors == []
        await svc.stop()
