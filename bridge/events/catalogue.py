"""The incident catalogue: category codes, names and routing, loaded from YAML (data, not code)."""
from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

#: Packaged default, identical to configs/categories.yaml (a test keeps them in step).
DEFAULT_CATALOGUE = Path(__file__).with_name("catalogue.yaml")


class Routing(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    unit: str = Field(min_length=1, description="Suggested responsible unit (归口单位).")
    priority: int = Field(2, ge=1, le=3, description="1 urgent, 2 normal, 3 low.")


class ClockLimits(BaseModel):
    """The loop's clocks for one category: how long each step of a work order may take."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    accept_s: float | None = Field(None, gt=0, description="Seconds from the incident's report until the platform "
                                   "accepts its work order (e.g. 2 hours = 7200). Unset: not timed.")
    handle_s: float | None = Field(None, gt=0, description="Seconds from acceptance (or a return for rework) until "
                                   "it is handled (e.g. 2 days = 172800). Unset: not timed.")
    verify_s: float | None = Field(None, gt=0, description="Seconds from handling until the result is verified "
                                   "(e.g. 1 day = 86400). Unset: not timed.")


class CategoryEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str = Field(pattern=r"^[a-z0-9-]+(\.[a-z0-9-]+)+$", description="Dotted code, major.minor.")
    name: str = Field(min_length=1, description="Name as the grid centre uses it.")
    name_en: str | None = Field(None, description="English gloss.")
    major: str = Field(min_length=1, description="Major class (大类).")
    routing: Routing = Field(description="Where the centre should send it, and how urgent it is.")
    time_limit_s: float | None = Field(
        None, gt=0, description="Seconds the centre has to handle an incident of this category (e.g. 2 days = 172800); "
        "the console's light is green for the first half, yellow until the limit, red past it. Unset: the light "
        "follows the incident's status.")

    limits: ClockLimits | None = Field(
        None, description="Time limits per step of the work order (acceptance, handling, verification); a city "
        "overrides them in the service config's `clocks.limits`.")

    @property
    def unit(self) -> str:
        return self.routing.unit

    @property
    def priority(self) -> int:
        return self.routing.priority


class Catalogue:
    def __init__(self, entries: list[CategoryEntry], source: Path) -> None:
        self.source = source
        self.by_code: dict[str, CategoryEntry] = {}
        for e in entries:
            if e.code in self.by_code:
                raise ValueError(f"{source}: category {e.code!r} is listed twice")
            self.by_code[e.code] = e

    @classmethod
    def load(cls, path: Path | None = None) -> Catalogue:
        path = path or DEFAULT_CATALOGUE
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ValueError(f"{path}: invalid YAML: {exc}") from None
        items = raw.get("categories") if isinstance(raw, dict) else None
        if not isinstance(items, list):
            raise ValueError(f"{path}: expected a top-level `categories:` list")
        entries = []
        for i, item in enumerate(items):
            try:
                entries.append(CategoryEntry.model_validate(item))
            except ValidationError as exc:
                first = exc.errors()[0]
                loc = ".".join(str(p) for p in first["loc"])
                raise ValueError(f"{path}: categories[{i}].{loc}: {first['msg']}") from None
        return cls(entries, path)

    def __contains__(self, code: str) -> bool:
        return code in self.by_code

    def __getitem__(self, code: str) -> CategoryEntry:
        return self.by_code[code]
