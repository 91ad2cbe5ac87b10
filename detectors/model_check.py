"""check-config's look at the models: every model a config names is in the registry, can run on
the configured engine and size, and has the classes the config names. Each problem names its field.

A camera's config is the root's, read duck-typed (`id`, `zones`, `rules`, `objects`, `classes`,
`models`); the catalogue is anything that answers `category in catalogue` and has a `source`."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from detectors.detector_config import FULL_FRAME, ModelConfig
from detectors.registry import ModelEntry, Registry, RegistryError

RULE_CLASS_FIELDS = ("classes", "stall_classes", "person_classes", "object_classes", "carrier_classes", "self_classes")


def _entry(registry: Registry, name: str, backend: str | None, imgsz: int | None, at: str,
           problems: list[tuple[str, str]]) -> ModelEntry | None:
    try:
        entry = registry.get(name)
    except (KeyError, RegistryError) as exc:
        problems.append((f"{at}.{'name' if at == 'model' else 'model'}", str(exc.args[0])))
        return None
    if not entry.builtin:
        if imgsz is not None and imgsz != entry.imgsz:
            problems.append((f"{at}.imgsz", f"model {name} was imported at imgsz {entry.imgsz}, not {imgsz}; "
                             "leave it unset or import the checkpoint again with --imgsz"))
        if backend is not None and backend not in entry.exports:
            problems.append((f"{at}.backend", f"model {name} was exported for {sorted(entry.exports)}, not {backend}; "
                             f"import it again with --backend {backend}"))
    return entry


def main_model_problems(data_dir: Path, model: ModelConfig) -> list[tuple[str, str]]:
    """The main model (`model`) against the registry of `data_dir`."""
    problems: list[tuple[str, str]] = []
    _entry(Registry(data_dir), model.name, model.backend, model.imgsz, "model", problems)
    return problems


def camera_model_problems(data_dir: Path, model: ModelConfig, cam: Any, at: str,
                          catalogue: Any | None) -> list[tuple[str, str]]:
    """Classes the camera's rules, filters and class mappings name against the models that must
    have them (`model`: the main one); the camera's extra models against the registry of `data_dir`."""
    registry = Registry(data_dir)
    problems: list[tuple[str, str]] = []
    try:
        main = registry.get(model.name)
    except (KeyError, RegistryError):
        main = None  # reported once, at `model.name`
    zones = {z.name for z in cam.zones} | {FULL_FRAME}
    if main is not None:
        known = set(main.classes)
        for j, rule in enumerate(cam.rules):
            for field in RULE_CLASS_FIELDS:
                unknown = [c for c in getattr(rule, field, []) if c not in known]
                if unknown:
                    problems.append((f"{at}.rules[{j}].{field}", _no_class(main, unknown)))
        for name in cam.objects:
            if name not in known:
                problems.append((f"{at}.objects.{name}", _no_class(main, [name])))
        for cls in cam.classes:
            if cls not in known:
                problems.append((f"{at}.classes.{cls}", _no_class(main, [cls])))
    problems += _class_map_problems(cam.classes, f"{at}.classes", zones, cam.id, catalogue)
    for j, m in enumerate(cam.models):
        where = f"{at}.models[{j}]"
        if m.path is not None:
            if not m.path.exists():
                problems.append((f"{where}.path", f"model file not found: {m.path}"))
        else:
            backend = m.engine(model.backend).backend
            entry = _entry(registry, m.model, backend, m.imgsz, where, problems)
            for cls in m.classes if entry is not None else ():
                if cls not in entry.classes:
                    problems.append((f"{where}.classes.{cls}", _no_class(entry, [cls])))
        problems += _class_map_problems(m.classes, f"{where}.classes", zones, cam.id, catalogue)
    return problems


def _class_map_problems(classes: dict, at: str, zones: set[str], camera_id: str,
                        catalogue: Any | None) -> list[tuple[str, str]]:
    problems = []
    for cls, c in classes.items():
        if catalogue is not None and c.category not in catalogue:
            problems.append((f"{at}.{cls}.category", f"unknown category {c.category!r}; see {catalogue.source}"))
        if c.zone is not None and c.zone not in zones:
            problems.append((f"{at}.{cls}.zone", f"no zone {c.zone!r} on camera {camera_id!r}"))
    return problems


def _no_class(entry: ModelEntry, unknown: list[str]) -> str:
    shown = entry.classes if len(entry.classes) <= 20 else entry.classes[:20] + ["..."]
    return f"model {entry.name} has no class {unknown}; its classes: {shown}"
