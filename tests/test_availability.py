"""Camera availability (在线率) from recorded state changes, with the clock in the test's hands:
rates over a window, time the service was not running left out, a killed service closed at its
last heartbeat, changes surviving a restart (the SQLite table), and street/district sums."""
from __future__ import annotations

import pytest

from bridge.store.availability import AvailabilityLog, AvailabilityRecorder, Place, rate_of, report

H = 3600.0
T0 = 1_800_000_000.0  # a fixed "now"; nothing here reads the wall clock


def test_rate_counts_online_time_over_watched_time():
    changes = [(T0, "connecting"), (T0 + 10, "online"), (T0 + 3 * H, "offline"), (T0 + 4 * H, "online")]
    r = rate_of(changes, T0, T0 + 5 * H)
    assert r.observed_s == 5 * H and r.online_s == 4 * H - 10
    assert r.rate == pytest.approx((4 * H - 10) / (5 * H), abs=1e-4)
    # A window inside one state, and one before anything was recorded.
    assert rate_of(changes, T0 + H, T0 + 2 * H).rate == 1.0
    assert rate_of(changes, T0 - 2 * H, T0 - H).rate is None


def test_time_the_service_was_stopped_counts_neither_way():
    changes = [(T0, "online"), (T0 + H, "stopped"), (T0 + 5 * H, "online"), (T0 + 6 * H, "stalled")]
    r = rate_of(changes, T0, T0 + 7 * H)
    assert (r.online_s, r.observed_s) == (2 * H, 3 * H)


def test_changes_survive_a_restart_and_a_killed_service_stops_at_its_heartbeat(tmp_path):
    path = tmp_path / "console.sqlite3"
    clock = [T0]
    state = {"cam": ("online", T0)}
    db = AvailabilityLog(path, heartbeat_s=60)
    rec = AvailabilityRecorder(db, lambda: [(k, s, since) for k, (s, since) in state.items()], lambda: clock[0])
    db.open(clock[0])
    rec.poll()
    rec.poll()  # the same state again is not a change
    state["cam"] = ("offline", T0 + H)
    rec.poll()
    state["cam"] = ("online", T0 + 2 * H)
    rec.poll()
    db.heartbeat(T0 + 3 * H)  # then the service is killed: no `stopped` written
    db.close()

    db = AvailabilityLog(path)  # the next run, 10 hours later
    db.open(T0 + 13 * H)
    assert db.transitions("cam", T0 - 1, T0 + 14 * H) == [
        (T0, "online"), (T0 + H, "offline"), (T0 + 2 * H, "online"), (T0 + 3 * H, "stopped")]
    r = rate_of(db.transitions("cam", T0, T0 + 13 * H), T0, T0 + 13 * H)
    assert (r.online_s, r.observed_s) == (2 * H, 3 * H)
    db.close()


def test_a_clean_stop_records_stopped_once(tmp_path):
    db = AvailabilityLog(tmp_path / "a.sqlite3")
    clock = [T0]
    rec = AvailabilityRecorder(db, lambda: [("cam", "online", T0)], lambda: clock[0])
    db.open(T0)
    rec.poll()
    clock[0] = T0 + 100
    rec.stop()
    rec.stop()
    assert db.transitions("cam", T0 - 1, T0 + 200) == [(T0, "online"), (T0 + 100, "stopped")]
    db.close()


def test_report_per_camera_street_and_district(tmp_path):
    db = AvailabilityLog(tmp_path / "a.sqlite3")
    now = T0 + 8 * 86_400
    db.record("a", "online", now - 8 * 86_400)  # online all week
    db.record("b", "online", now - 8 * 86_400)
    db.record("b", "offline", now - 12 * H)      # offline the last 12 hours
    db.record("c", "offline", now - 8 * 86_400)   # offline all week, another street
    qq, other = Place("990001001", "清泉街道", "990001", "雪亮示范区"), Place("990001002", "泉南街道", "990001", "雪亮示范区")
    rep = report(db, [("a", "A", qq), ("b", "B", qq), ("c", "C", other)], now)
    cams = {c["id"]: c for c in rep["cameras"]}
    assert cams["a"]["day"]["rate"] == 1.0 and cams["a"]["week"]["rate"] == 1.0
    assert cams["b"]["day"]["rate"] == 0.5
    assert cams["b"]["week"]["rate"] == pytest.approx(1 - 12 / (7 * 24), abs=1e-4)
    assert cams["b"]["hourly"] == [1.0] * 12 + [0.0] * 12
    streets = {s["code"]: s for s in rep["streets"]}
    assert streets["990001001"]["cameras"] == 2 and streets["990001001"]["day"]["rate"] == 0.75
    assert streets["990001002"]["day"]["rate"] == 0.0
    (district,) = rep["districts"]
    assert district["cameras"] == 3 and district["day"]["rate"] == pytest.approx(1.5 / 3, abs=1e-4)
    db.close()


def test_a_starting_worker_closes_only_its_own_cameras(tmp_path):
    path = tmp_path / "console.sqlite3"  # shared by two cluster workers on one data_dir
    a, b = AvailabilityLog(path, owner="worker-a"), AvailabilityLog(path, owner="worker-b")
    a.open(T0)
    b.open(T0)
    a.record("cam-a", "online", T0)
    b.record("cam-b", "online", T0)
    a.heartbeat(T0 + H)
    a.close()  # worker-a is killed; worker-b runs on
    a = AvailabilityLog(path, owner="worker-a")
    a.open(T0 + 2 * H)
    assert a.transitions("cam-a", T0 - 1, T0 + 3 * H) == [(T0, "online"), (T0 + H, "stopped")]
    assert a.transitions("cam-b", T0 - 1, T0 + 3 * H) == [(T0, "online")]
    a.close()
    b.close()
