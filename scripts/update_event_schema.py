"""Write docs/event.schema.json and docs/feedback.schema.json from the pydantic models (`make reference`);
tests check they are current."""
from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # this checkout's code, not an installed copy

from bridge.events.model import event_json_schema  # noqa: E402
from bridge.feedback.messages import feedback_json_schema  # noqa: E402

TARGETS = {REPO / "docs" / "event.schema.json": event_json_schema,
           REPO / "docs" / "feedback.schema.json": feedback_json_schema}


def main() -> None:
    for target, schema in TARGETS.items():
        target.write_text(json.dumps(schema(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        print(f"updated {target}")


if __name__ == "__main__":
    main()
