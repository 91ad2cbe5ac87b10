"""Problems of a config file (the service config, a label file), each as (field path, message).

In the lowest layer so that every part that reads a file of settings reports its problems the
same way: `path: field.path[0].name: message`."""
from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError


class ConfigError(Exception):
    """All problems of one config file, each as (field path, message)."""

    def __init__(self, path: Path, problems: list[tuple[str, str]]) -> None:
        self.path = path
        self.problems = problems
        super().__init__("\n".join(self.lines()))

    def lines(self) -> list[str]:
        return [f"{self.path}: {loc}: {msg}" if loc else f"{self.path}: {msg}" for loc, msg in self.problems]


def field_path(parts: tuple) -> str:
    """A pydantic error location as a field path: `cameras[0].rules[1].zone`."""
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def validation_problems(exc: ValidationError, tags: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """Pydantic's errors as problems. `tags`: the discriminator values of tagged unions (rule types),
    which pydantic puts in the path: they are noise there; a bad or missing tag is blamed on `type`."""
    problems = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if p not in tags)
        if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
            loc += ("type",)
        problems.append((field_path(loc), err["msg"].removeprefix("Value error, ")))
    return problems
