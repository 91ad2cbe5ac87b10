"""Write docs/event.schema.json from the pydantic Event model (`make schema`); a test checks it is current."""
from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # this checkout's code, not an installed copy

from bridge.event import event_json_schema  # noqa: E402

TARGET = REPO / "docs" / "event.schema.json"


def main() -> None:
    TARGET.write_text(json.dumps(event_json_schema(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"updated {TARGET}")


if __name__ == "__main__":
    main()
