"""Config from the environment: `XUELIANG__SECTION__FIELD=value` overrides one field.

Containers are configured this way (deploy/compose.yaml): a double underscore separates the
parts of the field path, names are lower-cased, and the value is read as YAML, so `true`, `8000`,
`null` and `[a, b]` have their YAML types and anything else stays a string. Overrides are
applied to the raw document before validation, so a bad value fails like a bad value in the
file, and the error names the variable as well as the field path. Items of a list (a camera in
`cameras`) have no name to address them by; a whole list can be given as a YAML flow value.
"""
from __future__ import annotations

from collections.abc import Mapping

import yaml

PREFIX = "XUELIANG__"
CONFIG_VAR = "XUELIANG_CONFIG"  # the config file `xueliang run` and `check-config` read without -c


def overrides(environ: Mapping[str, str]) -> list[tuple[str, tuple[str, ...], object]]:
    """(variable, field path, value) of every override, sorted by variable so the order is stable."""
    out = []
    for name in sorted(environ):
        if not name.startswith(PREFIX):
            continue
        path = tuple(p.lower() for p in name[len(PREFIX):].split("__"))
        try:
            value = yaml.safe_load(environ[name])
        except yaml.YAMLError:  # not YAML (an unbalanced bracket, a stray colon): take the text as it is
            value = environ[name]
        out.append((name, path, value))
    return out


def apply(raw: dict, environ: Mapping[str, str]) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """Set each override in `raw` (creating sections); return {field path: variable} and problems."""
    applied: dict[str, str] = {}
    problems: list[tuple[str, str]] = []
    for name, path, value in overrides(environ):
        dotted = ".".join(path)
        if not all(path):
            problems.append((f"env {name}", "empty field name (a double underscore at the end, or four in a row?)"))
            continue
        node = raw
        for i, part in enumerate(path[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                where = ".".join(path[:i + 1])
                what = "a list: its items cannot be addressed by environment variables, only the whole list " \
                       "as a YAML flow value" if isinstance(child, list) else f"a {type(child).__name__}, not a section"
                problems.append((f"env {name}", f"{where} is {what}"))
                break
            node = child
        else:
            node[path[-1]] = value
            applied[dotted] = name
    return applied, problems


def blame(problems: list[tuple[str, str]], applied: dict[str, str]) -> list[tuple[str, str]]:
    """Prefix the problems of overridden fields (or of fields inside them) with the variable."""
    out = []
    for loc, msg in problems:
        name = next((var for dotted, var in applied.items()
                     if loc == dotted or loc.startswith((dotted + ".", dotted + "["))), None)
        out.append((f"env {name}: {loc}", msg) if name else (loc, msg))
    return out
