"""Evidence store: a local directory of JPEG snapshots with unguessable names."""
from __future__ import annotations

import os
import re
import uuid
from pathlib import Path

_NAME = re.compile(r"^[0-9a-f]{32}\.jpg$")


class EvidenceStore:
    def __init__(self, root: Path, url_prefix: str = "/evidence") -> None:
        self.root = root
        self.url_prefix = url_prefix
        root.mkdir(parents=True, exist_ok=True)

    def put_jpeg(self, data: bytes) -> str:
        """Write atomically and return the URL path the API serves it under."""
        name = f"{uuid.uuid4().hex}.jpg"
        tmp = self.root / f".{name}.part"
        tmp.write_bytes(data)
        os.replace(tmp, self.root / name)
        return f"{self.url_prefix}/{name}"

    def path_of(self, name: str) -> Path | None:
        """The file for a served name, or None if the name is not one of ours (no path tricks)."""
        if not _NAME.match(name):
            return None
        path = self.root / name
        return path if path.is_file() else None
