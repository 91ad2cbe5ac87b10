"""The console's incident list against the event list it replaced, on one outbox, side by side.

Builds an outbox of N incidents with five events each (opened, three updates, cleared; a fifth of
them still open), then times, alternately in one run:

- events:    `EventStore.query(limit=100)`, the old live list (one row per event);
- incidents: `query_incidents(limit=100)`, one row per incident with state, best evidence, review;
- one incident: `query_incidents(incident=..., limit=1)`, what each live event refreshes.

Prints the medians and the ratios. Usage: `python bench/incidents_list.py --incidents 4000`.
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bridge.http.console.incidents_query import query_incidents  # noqa: E402
from bridge.events.model import CategoryRef, DetectorRef, Event, Evidence, GridRef, Location, SourceRef  # noqa: E402
from bridge.store.outbox import EventStore  # noqa: E402

T0 = datetime(2026, 12, 1, tzinfo=timezone.utc)


def event(n: int, incident: str, status: str) -> Event:
    return Event(event_id=f"e{n}", incident_id=incident, status=status,
                 category=CategoryRef(code="market.road-occupation", name="占道经营"),
                 occurred_at=T0 + timedelta(seconds=n), source=SourceRef(kind="video", camera_id=f"c{n % 50}"),
                 location=Location(lon=117.0, lat=36.65, crs="wgs84"),
                 grid=GridRef(code=f"9900010010020{n % 90:02d}", name="g", street="s"), confidence=0.3 + (n % 7) / 10,
                 evidence=Evidence(snapshot=f"/evidence/{n:032x}.jpg", crop=f"/evidence/{n + 1:032x}.jpg"),
                 detector=DetectorRef(model="yolov8n", rule="r", config_hash="abc"))


async def build(path: Path, incidents: int) -> EventStore:
    store = EventStore(path)
    n = 0
    for i in range(incidents):
        steps = ["opened", "updated", "updated", "updated"] + ([] if i % 5 == 0 else ["cleared"])
        batch = []
        for st in steps:
            n += 1
            batch.append(event(n, f"inc{i}", st))
        await store.append_many(batch)
    return store


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--incidents", type=int, default=4000)
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args()
    path = Path(tempfile.mkdtemp(prefix="bench-incidents-")) / "outbox.sqlite3"
    store = await build(path, args.incidents)
    times: dict[str, list[float]] = {"events": [], "incidents": [], "one incident": []}
    for r in range(args.repeat):
        t = time.perf_counter()
        await store.query(limit=100)
        times["events"].append(time.perf_counter() - t)
        t = time.perf_counter()
        rows = query_incidents(path, limit=100)
        times["incidents"].append(time.perf_counter() - t)
        t = time.perf_counter()
        query_incidents(path, incident=f"inc{(r * 37) % args.incidents}", limit=1)
        times["one incident"].append(time.perf_counter() - t)
    assert len(rows) == 100
    med = {k: statistics.median(v) * 1000 for k, v in times.items()}
    events = await store.query(limit=1)
    print(f"{args.incidents} incidents, {events[0].seq} events; median of {args.repeat}")
    for k, v in med.items():
        print(f"  {k:13s} {v:8.1f} ms  ({v / med['events']:.1f}x the event list)")
    store.close()


if __name__ == "__main__":
    asyncio.run(main())
