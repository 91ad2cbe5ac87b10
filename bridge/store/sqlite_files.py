"""Opening the service's SQLite files (outbox, dead letters, console): WAL mode, one owner.

Two processes may open the same new file at the same moment: two workers started together on
one `data_dir` share the dead-letter and console files. SQLite does not call its busy handler
for the switch to WAL when both connections race for it (it would deadlock), so one of them
gets "database is locked" at once, whatever the timeout; measured here, half the time. The
switch is therefore retried until the connection's timeout.
"""
from __future__ import annotations

import fcntl
import os
import random
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


class FileInUseError(RuntimeError):
    """Another process holds a file that has exactly one owner (the outbox)."""


def connect_wal(path: str | Path, what: str, *, timeout: float = 30.0, **kwargs) -> sqlite3.Connection:
    """A connection to `path` in WAL mode; `what` names the file in errors ("event store", ...)."""
    conn = sqlite3.connect(str(path), timeout=timeout, **kwargs)
    deadline = time.monotonic() + timeout
    while True:
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            break
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                conn.close()
                raise sqlite3.OperationalError(f"{what} {path}: {exc}") from exc
            time.sleep(random.uniform(0.005, 0.05))  # the other opener is done within milliseconds
    if mode.lower() != "wal" and str(path) != ":memory:":
        conn.close()
        raise RuntimeError(f"{what} {path}: SQLite refused WAL journal mode (got {mode!r}); "
                           "is the file on a filesystem without shared-memory support?")
    return conn


@contextmanager
def write_transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction on an autocommit connection (`isolation_level=None`): committed when
    the block ends, rolled back when it raises. IMMEDIATE takes the write lock at the start, so a
    busy file waits at BEGIN (up to the timeout) instead of failing half-way."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def claim(path: Path, what: str, hint: str) -> IO[str]:
    """Hold `<path>.lock` for as long as the returned file stays open, or raise FileInUseError
    naming the holder's pid. The kernel drops the lock when the holder dies, even by SIGKILL."""
    lock_path = path.with_name(path.name + ".lock")
    f = open(lock_path, "a+", encoding="ascii")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        holder = f.read().strip() or "unknown"
        f.close()
        raise FileInUseError(f"{what} {path} is in use by another process (pid {holder}); {hint}") from None
    f.seek(0)
    f.truncate()
    f.write(str(os.getpid()))
    f.flush()
    return f
