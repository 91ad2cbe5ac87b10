"""One incident, one record (bridge.merging.incidents): pure, no I/O."""
from __future__ import annotations

import pytest

from bridge.location.coordinates import LocalMetric
from bridge.merging.incidents import IncidentMerger, Sighting

ORIGIN = LocalMetric(117.015, 36.665)
G1, G2 = "990001002002001", "990001002002002"


def s(source, inc, east_m, t, category="sanitation.garbage-overflow", grid=G1, north_m=0.0, ends=False):
    lon, lat = ORIGIN.to_lonlat(east_m, north_m)
    return Sighting(source, inc, category, grid, lon, lat, t, ends)


def test_sources_within_radius_and_window_merge_and_list_all_sources():
    m = IncidentMerger(radius_m=30, window_s=300)
    a, new_a = m.observe(s("camera:c1", "i1", 0, 0))
    b, new_b = m.observe(s("camera:c2", "j7", 20, 60))
    c, new_c = m.observe(s("sensor:bin-3", "k1", 35, 120))  # 15 m from c2's sighting: chained
    assert new_a and not new_b and not new_c
    assert a is b is c and a.incident_id == "i1"
    assert a.sources == ["camera:c1", "camera:c2", "sensor:bin-3"]
    assert (a.first_t, a.last_t) == (0, 120)


@pytest.mark.parametrize("other", [
    s("camera:c2", "j", 45, 10),  # too far
    s("camera:c2", "j", 5, 301),  # too late
    s("camera:c2", "j", 5, 10, category="market.road-occupation"),  # other category
    s("camera:c2", "j", 5, 10, grid=G2),  # other grid, even though 5 m away
])
def test_does_not_merge_outside_r_t_category_or_grid(other):
    m = IncidentMerger(radius_m=30, window_s=300)
    first, _ = m.observe(s("camera:c1", "i1", 0, 0))
    inc, new = m.observe(other)
    assert new and inc is not first and first.sources == ["camera:c1"]


def test_updates_of_a_merged_source_incident_stay_with_it_and_state_is_per_grid():
    m = IncidentMerger(radius_m=30, window_s=60)
    m.observe(s("camera:c1", "i1", 0, 0))
    m.observe(s("camera:c1", "i2", 0, 0, grid=G2))
    inc, new = m.observe(s("camera:c1", "i1", 500, 50))  # same source incident, moved: same record
    assert not new and inc.incident_id == "i1" and len(inc.latest) == 1  # latest sighting only
    assert sorted(m.by_grid) == [G1, G2]
    assert [i.incident_id for i in m.by_grid[G2]] == ["i2"]


def test_a_merged_incident_closes_with_its_last_source_and_takes_no_new_sightings():
    m = IncidentMerger(radius_m=30, window_s=600)
    a, _ = m.observe(s("camera:c1", "i1", 0, 0))
    m.observe(s("camera:c2", "j1", 10, 5))
    inc, _ = m.observe(s("camera:c1", "i1", 0, 20, ends=True))
    assert inc is a and inc.open and inc.active == {("camera:c2", "j1")}
    inc, _ = m.observe(s("camera:c2", "j1", 10, 30, ends=True))
    assert inc is a and not inc.open and m.by_grid == {}
    again, new = m.observe(s("camera:c3", "k1", 0, 40))  # within R and T of a closed incident
    assert new and again.incident_id == "k1"


def test_one_sources_own_incidents_do_not_merge():
    # The lifecycle already decided these are two incidents (two objects, or two zones).
    m = IncidentMerger(radius_m=30, window_s=600)
    a, _ = m.observe(s("camera:c1", "i1", 0, 0))
    b, new = m.observe(s("camera:c1", "i2", 1, 5))
    assert new and b is not a


def test_partitioned_mergers_agree_with_one_merger():
    sightings = [s(f"camera:c{i % 3}", f"i{i}", (i * 7) % 50, i * 10, grid=(G1, G2)[i % 2])
                 for i in range(40)]
    whole = IncidentMerger(30, 120)
    ids_whole = [whole.observe(x)[0].incident_id for x in sightings]
    parts = {G1: IncidentMerger(30, 120), G2: IncidentMerger(30, 120)}
    ids_parts = [parts[x.grid].observe(x)[0].incident_id for x in sightings]
    assert ids_whole == ids_parts
    assert len(set(ids_whole)) < len(sightings)  # something did merge
