"""Config from the environment: `XUELIANG__SECTION__FIELD=value` overrides one field.

Containers are configured this way (deploy/compose.yaml): a double underscore separates the
parts of the field path, names are lower-cased, and the value is read as YAML, so `true`, `8000`,
`null` and `[a, b]` have their YAML types. A field that holds text (a password, a client id, a
path, a choice of strings) takes the text as it is, so `123456` or `yes` stay strings there, and
an empty value or `null` unsets it where it may be unset. Overrides are applied to the raw
document before validation, so a bad value fails like a bad value in the file, and the error
names the variable as well as the field path. Items of a list (a camera in `cameras`) have no
name to address them by; a whole list can be given as a YAML flow value.
"""
from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from pathlib import Path

import yaml
from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

PREFIX = "XUELIANG__"
CONFIG_VAR = "XUELIANG_CONFIG"  # the config file `xueliang run` and `check-config` read without -c
_TEXT = (str, SecretStr, Path)  # field types whose variables are taken as text, not YAML
_NULLS = ("", "~", "null", "Null", "NULL")


def field_at(model: type[BaseModel], path: tuple[str, ...]) -> FieldInfo | None:
    """The field a path names in a model tree, or None (no such field, or inside a list or dict)."""
    info = None
    for i, part in enumerate(path):
        if i:
            inner = [a for a in (typing.get_args(info.annotation) if _is_union(info.annotation) else (info.annotation,))
                     if isinstance(a, type) and issubclass(a, BaseModel)]
            if not inner:
                return None
            model = inner[0]
        info = model.model_fields.get(part)
        if info is None:
            return None
    return info


def _is_union(annotation) -> bool:
    return typing.get_origin(annotation) in (typing.Union, types.UnionType)


def _parse(text: str, info: FieldInfo | None) -> object:
    """The value of a variable for its field: text for text fields, YAML otherwise."""
    kinds = typing.get_args(info.annotation) if info is not None and _is_union(info.annotation) else \
        ((info.annotation,) if info is not None else ())
    literal_text = [k for k in kinds if typing.get_origin(k) is typing.Literal
                    and all(isinstance(v, str) for v in typing.get_args(k))]
    if kinds and all(k in _TEXT or k is type(None) or k in literal_text for k in kinds):
        return None if type(None) in kinds and text in _NULLS else text
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:  # not YAML (an unbalanced bracket, a stray colon): take the text as it is
        return text


def overrides(environ: Mapping[str, str], model: type[BaseModel] | None = None) -> list[tuple[str, tuple[str, ...], object]]:
    """(variable, field path, value) of every override, sorted by variable so the order is stable.

    With the root `model`, values of text fields stay text (see the module's docstring)."""
    out = []
    for name in sorted(environ):
        if not name.startswith(PREFIX):
            continue
        path = tuple(p.lower() for p in name[len(PREFIX):].split("__"))
        info = field_at(model, path) if model is not None and all(path) else None
        out.append((name, path, _parse(environ[name], info)))
    return out


def apply(raw: dict, environ: Mapping[str, str], model: type[BaseModel] | None = None
          ) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """Set each override in `raw` (creating sections); return {field path: variable} and problems."""
    applied: dict[str, str] = {}
    problems: list[tuple[str, str]] = []
    for name, path, value in overrides(environ, model):
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
