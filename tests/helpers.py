"""Small helpers shared by tests."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.brokers import free_port  # noqa: F401  (one helper for every test)

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
FIXTURES = SHARED / "fixtures" / "video"
TABLE_CLIP = FIXTURES / "one-by-one-person-detection.mp4"
DATA_DIR = Path(os.environ.get("XUELIANG_DATA_DIR", REPO / ".data")).resolve()

# Stays at the table from ../shared/fixtures/video/ATTRIBUTION.md, seconds.
TABLE_STAYS = [(7.5, 18.5), (23.5, 44.0), (51.5, 69.0), (76.0, 85.5), (93.5, 118.5), (125.0, 135.0)]


def xueliang(*args: str, timeout: float = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the CLI as a user would, from the repo root."""
    return subprocess.run(
        [sys.executable, "-m", "xueliang.cli", *args], cwd=REPO, capture_output=True, text=True,
        timeout=timeout, env={**os.environ, "XUELIANG_DATA_DIR": str(DATA_DIR), **(env or {})},
    )
