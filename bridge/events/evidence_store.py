"""Evidence store: snapshots (and later clips) kept with their sha256 under unguessable names.

`EvidenceStore` is the interface the pipeline writes to; `LocalEvidenceStore` (a directory) is
the default. Another backend (object storage, the platform's file service) implements the same
two methods.
"""
from __future__ import annotations

import hashlib
import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

# Clips are MP4 when the camera's codec fits, else Matroska or AVI (see ingest.clips).
_MEDIA = {"jpg": "image/jpeg", "mp4": "video/mp4", "mkv": "video/x-matroska", "avi": "video/x-msvideo"}
_NAME = re.compile(r"^[0-9a-f]{32}\.(" + "|".join(_MEDIA) + r")$")


@dataclass(frozen=True)
class StoredItem:
    url: str
    sha256: str


class EvidenceStore(Protocol):
    # None: not stored (the disk guard refuses evidence); the event goes out without the item.
    def put(self, data: bytes, ext: str) -> StoredItem | None: ...
    def path_of(self, name: str) -> Path | None: ...


class LocalEvidenceStore:
    def __init__(self, root: Path, url_prefix: str = "/evidence") -> None:
        self.root = root
        self.url_prefix = url_prefix
        root.mkdir(parents=True, exist_ok=True)

    def put(self, data: bytes, ext: str) -> StoredItem:
        """Write atomically under a random name; return its URL path and the content's sha256."""
        if ext not in _MEDIA:
            raise ValueError(f"unsupported evidence type {ext!r}; one of {sorted(_MEDIA)}")
        name = f"{uuid.uuid4().hex}.{ext}"
        tmp = self.root / f".{name}.part"
        try:
            tmp.write_bytes(data)
            os.replace(tmp, self.root / name)
        except OSError:  # e.g. the disk is full: leave no half-written file behind
            tmp.unlink(missing_ok=True)
            raise
        return StoredItem(f"{self.url_prefix}/{name}", hashlib.sha256(data).hexdigest())

    def path_of(self, name: str) -> Path | None:
        """The file for a served name, or None if the name is not one of ours (no path tricks)."""
        if not _NAME.match(name):
            return None
        path = self.root / name
        return path if path.is_file() else None


def media_type(name: str) -> str:
    return _MEDIA.get(name.rsplit(".", 1)[-1], "application/octet-stream")
