"""Active hours: a rule runs only inside its local-time spans (which may cross midnight)."""
from __future__ import annotations

from datetime import datetime, time


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
