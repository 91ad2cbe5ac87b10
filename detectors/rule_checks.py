"""Checks of detection rules against the rest of the config: a camera rule's zone is on its
camera, a rule's category is in the catalogue, a scene region can fit in the rule's zone.

The config composition (xueliang/config.py) runs them; the camera is its config read duck-typed
(`id`, `zones`, `rules`), the catalogue anything that answers `code in catalogue` and has a
`source`. Each problem is (field path, message)."""
from __future__ import annotations

from typing import Any

from shapely.geometry import Polygon


def check_unique_names(zones: list, rules: list) -> None:
    """ValueError unless a camera's zone names and its rule ids are each unique."""
    for what, names in (("zone names", [z.name for z in zones]), ("rule ids", [r.id for r in rules])):
        if len(set(names)) != len(names):
            raise ValueError(f"{what} must be unique, got {names}")


def unknown_category(code: str, catalogue: Any | None) -> str | None:
    """The problem of a category code not in the catalogue; None when it is (or there is no catalogue)."""
    if catalogue is None or code in catalogue:
        return None
    return f"unknown category {code!r}; see {catalogue.source}"


def category_problems(rules: list, at: str, catalogue: Any | None) -> list[tuple[str, str]]:
    """Each rule of `rules` (at `at[j]`) whose category is not in the catalogue."""
    return [(f"{at}[{j}].category", msg) for j, rule in enumerate(rules)
            if (msg := unknown_category(rule.category, catalogue)) is not None]


def camera_rule_problems(cam: Any, at: str, catalogue: Any | None) -> list[tuple[str, str]]:
    """Each rule of the camera at `at`: its zone is on the camera, its category in the catalogue, its
    scene regions can fit in its zone."""
    problems: list[tuple[str, str]] = []
    zones = {z.name for z in cam.zones}
    for j, rule in enumerate(cam.rules):
        where = f"{at}.rules[{j}]"
        if rule.zone not in zones:
            problems.append((f"{where}.zone", f"no zone {rule.zone!r} on camera {cam.id!r}; zones: {sorted(zones)}"))
        if (msg := unknown_category(rule.category, catalogue)) is not None:
            problems.append((f"{where}.category", msg))
        problems += region_vs_zone(cam, rule, where)
    return problems


def region_vs_zone(cam: Any, rule: Any, where: str) -> list[tuple[str, str]]:
    """A scene region as large as the rule's zone could never be told from the zone itself."""
    zone = next((z for z in cam.zones if z.name == rule.zone), None)
    size = getattr(rule, "min_region_area", None)
    if zone is None or size is None or (rule.type == "dumping" and not rule.scene_regions):
        return []
    area = Polygon(zone.polygon).area
    if size >= area:
        return [(f"{where}.min_region_area", f"{size} is not smaller than zone {zone.name!r} ({area:.4f} of the frame); "
                 "the region could never fit in the zone")]
    return []
