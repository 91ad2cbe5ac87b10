"""What carrying incidents over a restart adds to the start, side by side in one run.

An outbox of N events (incidents of four events each: opened, updated, updated, cleared; the last
20 left open) is built with plain INSERTs, then, on the same file:
- open: `EventStore` opening it (what every start already pays: schema check, pending count);
- resume: `bridge.resume.read_open` finding the open incidents and their events.

Usage: python bench/restart_scan.py [--n 100000 1000000]
"""
from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bridge.store.outbox import EventStore  # noqa: E402
from tests.test_merge_stage import camera, event  # noqa: E402
from bridge.resume import read_open  # noqa: E402


def build(path: Path, n: int) -> None:
    EventStore(path).close()
    payload = event(camera("a", 0), "opened", "x", 0).model_dump_json()
    rows = []
    for i in range(n):
        iid, st = f"inc-{i // 4}", ["opened", "updated", "updated", "cleared"][i % 4]
        if i // 4 >= n // 4 - 20 and st == "cleared":
            st = "updated"
        p = payload.replace('"x"', json.dumps(iid)).replace('"opened"', json.dumps(st), 1)
        rows.append((f"e{i}", iid, st, "c", "g", "a", "2026-01-01T00:00:00+08:00", 0.0, "k", 1, p))
    conn = sqlite3.connect(path)
    conn.executemany("INSERT INTO events (event_id, incident_id, status, category, grid, camera_id, occurred_at, "
                     "created_at, key, schema_version, payload) VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows)
    conn.commit()
    conn.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, nargs="+", default=[100_000, 1_000_000])
    args = ap.parse_args()
    for n in args.n:
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "outbox.sqlite3"
            build(path, n)
            t = time.perf_counter()
            EventStore(path).close()
            open_s = time.perf_counter() - t
            t = time.perf_counter()
            carried = read_open(path)
            resume_s = time.perf_counter() - t
            assert len(carried.incidents) == 20, len(carried.incidents)
            print(f"{n:>9} events: open {open_s:.2f} s, resume {resume_s:.2f} s "
                  f"({resume_s / open_s:.1f}x the open), {len(carried.incidents)} open incidents")


if __name__ == "__main__":
    main()
