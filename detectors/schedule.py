"""Active hours: a rule runs only inside its local-time spans (which may cross midnight), read in
its camera's timezone (`Timezone`: an IANA name)."""
from __future__ import annotations

from datetime import datetime, time
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator


def _known_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown timezone {name!r}; use an IANA name such as Asia/Shanghai") from None
    return name


# A camera's timezone, in which its rules' active hours are read.
Timezone = Annotated[str, AfterValidator(_known_timezone)]


def _parse(span: str) -> tuple[time, time]:
    a, b = span.split("-")
    start = time.fromisoformat(a)
    end = time(23, 59, 59, 999999) if b == "24:00" else time.fromisoformat(b)
    return start, end


def is_active(spans: list[str], local: datetime) -> bool:
    if not spans:
        return True
    now = local.time()
    for span in spans:
        start, end = _parse(span)
        if (start <= now < end) if start <= end else (now >= start or now < end):
            return True
    return False
