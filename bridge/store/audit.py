"""Who changed what, when: the audit log, and the versioned camera configs it points at.

One SQLite file (`<data_dir>/console.sqlite3`). Writes are few (a login, a save, a roll back, a
token made), so each call opens its own short connection; handlers run them in a thread.
"""
from __future__ import annotations

import json
import sqlite3
import threading
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bridge.store.sqlite_files import connect_wal

_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at      TEXT NOT NULL,
    actor   TEXT NOT NULL,
    role    TEXT,
    action  TEXT NOT NULL,
    target  TEXT,
    detail  TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS camera_versions (
    camera_id TEXT NOT NULL,
    version   INTEGER NOT NULL,
    at        TEXT NOT NULL,
    author    TEXT NOT NULL,
    comment   TEXT,
    config    TEXT NOT NULL,
    PRIMARY KEY (camera_id, version)
);
"""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class ConfigVersion:
    camera_id: str
    version: int
    at: str
    author: str
    comment: str | None
    config: dict[str, Any]


class ConsoleDb:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        with self._conn() as db:
            db.executescript(_SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        return connect_wal(self.path, "console database")

    # ------------------------------------------------------------------ audit

    def record(self, actor: str, action: str, target: str | None = None, detail: dict | None = None,
               role: str | None = None) -> int:
        with self._lock, closing(self._conn()) as db, db:
            cur = db.execute("INSERT INTO audit (at, actor, role, action, target, detail) VALUES (?, ?, ?, ?, ?, ?)",
                             (_now(), actor, role, action, target, json.dumps(detail or {}, ensure_ascii=False)))
            return int(cur.lastrowid)

    def entries(self, limit: int = 100, before: int | None = None) -> list[dict[str, Any]]:
        sql = "SELECT id, at, actor, role, action, target, detail FROM audit"
        args: list[Any] = []
        if before is not None:
            sql += " WHERE id < ?"
            args.append(before)
        sql += " ORDER BY id DESC LIMIT ?"
        args.append(limit)
        with closing(self._conn()) as db:
            rows = db.execute(sql, args).fetchall()
        return [{"id": r[0], "at": r[1], "actor": r[2], "role": r[3], "action": r[4], "target": r[5],
                 "detail": json.loads(r[6])} for r in rows]

    # ------------------------------------------------------------------ camera config versions

    def save_version(self, camera_id: str, config: dict, author: str, comment: str | None = None,
                     baseline: dict | None = None) -> ConfigVersion:
        """Store the next version; the first save also stores the start-up config as version 0."""
        with self._lock, closing(self._conn()) as db, db:
            row = db.execute("SELECT max(version) FROM camera_versions WHERE camera_id = ?", (camera_id,)).fetchone()
            last = row[0]
            if last is None and baseline is not None:
                db.execute("INSERT INTO camera_versions VALUES (?, 0, ?, 'config file', 'configuration at start-up', ?)",
                           (camera_id, _now(), json.dumps(baseline, ensure_ascii=False)))
                last = 0
            version = (last or 0) + 1
            at = _now()
            db.execute("INSERT INTO camera_versions VALUES (?, ?, ?, ?, ?, ?)",
                       (camera_id, version, at, author, comment, json.dumps(config, ensure_ascii=False)))
        return ConfigVersion(camera_id, version, at, author, comment, config)

    def versions(self, camera_id: str) -> list[ConfigVersion]:
        with closing(self._conn()) as db:
            rows = db.execute("SELECT camera_id, version, at, author, comment, config FROM camera_versions "
                              "WHERE camera_id = ? ORDER BY version DESC", (camera_id,)).fetchall()
        return [ConfigVersion(r[0], r[1], r[2], r[3], r[4], json.loads(r[5])) for r in rows]

    def version(self, camera_id: str, version: int) -> ConfigVersion | None:
        return next((v for v in self.versions(camera_id) if v.version == version), None)

    def latest(self, camera_id: str) -> ConfigVersion | None:
        vs = self.versions(camera_id)
        return vs[0] if vs else None
