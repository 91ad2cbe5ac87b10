"""Poison records: tell a permanent refusal from a passing one, and park what Kafka will never take.

A record the broker refuses for good (larger than the topic's `max.message.bytes` or the
producer's `max_request_size`, the topic not authorised, a payload aiokafka cannot serialise)
would otherwise be retried forever with every later event waiting behind it. The dispatcher asks
`is_permanent` about each failure; `Parking` decides what to do:

* A broker refuses a whole producer batch, so a refusal of a record that shared its batch with
  others does not say which record is to blame. The dispatcher then sends the rows of that round
  one at a time ("careful" rounds) until the culprit is found alone.
* A record refused permanently `park_after_attempts` times on its own is parked: the row stays in
  the outbox, marked `suppressed = 'parked: <error>'` (kept, listed by the API, never sent) with
  a row in the `parked` table (error, attempts, when), and the rows behind it flow on.
* An admin re-sends parked rows after fixing the cause (`POST /outbox/parked/resend`,
  `xueliang outbox resend`): they become pending again and go out after the rows already queued,
  so a re-sent record reaches its key's partition after that key's later events.

Attempts are counted in memory: a restart counts a poison record's attempts again from zero.
"""
from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import structlog
from aiokafka.errors import (CorruptRecordException, InvalidTopicError, KafkaError, MessageSizeTooLargeError,
                             PolicyViolationError, RecordTooLargeError, TopicAuthorizationFailedError,
                             UnsupportedForMessageFormatError)

from bridge.bridge_metrics import OUTBOX_PARKED, PARKED_TOTAL
from bridge.store.sqlite_files import write_transaction

log = structlog.get_logger(__name__)

#: Kafka's answers about the record or the topic, which sending the same record again cannot change.
PERMANENT_KAFKA = (MessageSizeTooLargeError, RecordTooLargeError, TopicAuthorizationFailedError, InvalidTopicError,
                   CorruptRecordException, UnsupportedForMessageFormatError, PolicyViolationError)
#: Raised by `producer.send()` for the record itself: key, value or headers aiokafka cannot encode.
SERIALISATION = (TypeError, ValueError, UnicodeError)
PARKED_PREFIX = "parked: "

_SCHEMA = """
CREATE TABLE IF NOT EXISTS parked (
    seq       INTEGER PRIMARY KEY,   -- the outbox row (events.seq)
    event_id  TEXT    NOT NULL,
    error     TEXT    NOT NULL,
    attempts  INTEGER NOT NULL,
    parked_at REAL    NOT NULL
);
"""


def is_permanent(exc: BaseException, *, at_send: bool = False) -> bool:
    """True when Kafka (or aiokafka) refused the record for a reason that a retry cannot change.

    Network errors, leader changes, timeouts and every error marked retriable are passing. With
    `at_send` (raised by `producer.send()` itself) a TypeError/ValueError is the record's own
    serialisation failing, which is permanent too.
    """
    if isinstance(exc, PERMANENT_KAFKA):
        return True
    if isinstance(exc, KafkaError):
        return False  # retriable, or about the producer or the cluster rather than this record
    return at_send and isinstance(exc, SERIALISATION)


class RecordRefused(RuntimeError):
    """A record Kafka refused; `permanent` says whether retrying can help."""

    def __init__(self, message: str, seq: int, permanent: bool, alone: bool, rows_from_it: int = 1) -> None:
        super().__init__(message)
        self.seq, self.permanent, self.alone, self.rows_from_it = seq, permanent, alone, rows_from_it


class RecordParked(RuntimeError):
    """A poison record was parked; the dispatcher starts a fresh producer and carries on."""


def ensure_table(db: sqlite3.Connection) -> None:
    db.executescript(_SCHEMA)


def park_row(db: sqlite3.Connection, seq: int, error: str, attempts: int) -> bool:
    """Park one pending row in one transaction; False if it was no longer pending."""
    ensure_table(db)
    with write_transaction(db):
        cur = db.execute("UPDATE events SET suppressed = ? WHERE seq = ? AND delivered_at IS NULL AND suppressed IS NULL",
                         (PARKED_PREFIX + error[:500], seq))
        if cur.rowcount == 1:
            event_id = db.execute("SELECT event_id FROM events WHERE seq = ?", (seq,)).fetchone()[0]
            db.execute("INSERT OR REPLACE INTO parked (seq, event_id, error, attempts, parked_at) VALUES (?, ?, ?, ?, ?)",
                       (seq, event_id, error, attempts, time.time()))
    return cur.rowcount == 1


def parked_rows(db: sqlite3.Connection, limit: int = 1000) -> list[dict[str, Any]]:
    """Parked rows, oldest first, with what the event is about (never its payload)."""
    ensure_table(db)
    rows = db.execute(
        "SELECT p.seq, p.event_id, e.incident_id, e.status, e.category, e.grid, e.camera_id, e.key, p.error, "
        "p.attempts, p.parked_at, length(e.payload) FROM parked p JOIN events e ON e.seq = p.seq "
        "ORDER BY p.seq LIMIT ?", (limit,)).fetchall()
    names = ("seq", "event_id", "incident_id", "status", "category", "grid", "camera_id", "key", "error", "attempts",
             "parked_at", "payload_bytes")
    return [dict(zip(names, r)) for r in rows]


def parked_line(row: dict[str, Any]) -> str:
    """A row of `parked_rows` in one line, for people (`xueliang outbox parked`)."""
    at = datetime.fromtimestamp(row["parked_at"], timezone.utc).isoformat(timespec="seconds")
    return (f"{row['seq']}\t{row['event_id']}\t{row['status']}\t{row['category']}\tkey={row['key']}\t"
            f"{row['payload_bytes']} B\tparked {at} after {row['attempts']}\t{row['error']}")


def parked_count(db: sqlite3.Connection) -> int:
    ensure_table(db)
    n = int(db.execute("SELECT count(*) FROM parked").fetchone()[0])
    OUTBOX_PARKED.set(n)
    return n


def release_rows(db: sqlite3.Connection, seqs: list[int] | None) -> list[int]:
    """Make parked rows pending again (all of them with `seqs` None); returns the seqs released."""
    ensure_table(db)
    with write_transaction(db):
        if seqs is None:
            chosen = [r[0] for r in db.execute("SELECT seq FROM parked ORDER BY seq")]
        else:
            chosen = [s for s in seqs if db.execute("SELECT 1 FROM parked WHERE seq = ?", (s,)).fetchone()]
        for seq in chosen:
            db.execute("UPDATE events SET suppressed = NULL WHERE seq = ? AND delivered_at IS NULL", (seq,))
            db.execute("DELETE FROM parked WHERE seq = ?", (seq,))
    parked_count(db)
    return chosen


@dataclass
class Parking:
    """The dispatcher's bookkeeping: attempts per row and the careful (one row per round) mode."""

    park_after_attempts: int
    careful: int = 0  # rounds left to send one row at a time
    parked: int = 0  # rows parked by this dispatcher

    def __post_init__(self) -> None:
        self._attempts: dict[int, int] = {}

    def round_size(self, batch_size: int) -> int:
        return 1 if self.careful > 0 else batch_size

    def delivered_alone(self) -> None:
        if self.careful > 0:
            self.careful -= 1

    def refused(self, err: RecordRefused, rows_from_it: int) -> int | None:
        """A permanent refusal of row `err.seq`: returns its attempt count when it is due for
        parking, else None (then it is retried, alone if it did not fail alone)."""
        if not err.alone:  # its batch had other rows: find the culprit one row at a time
            self.careful = max(self.careful, rows_from_it)
            log.warning("kafka refused a batch for good; sending its rows one at a time to find the culprit",
                        first_seq=err.seq, rows=rows_from_it, error=str(err))
            return None
        if len(self._attempts) > 10_000:  # rows that were delivered in the end leave stale counts
            self._attempts.clear()
        n = self._attempts[err.seq] = self._attempts.get(err.seq, 0) + 1
        return n if n >= self.park_after_attempts else None

    async def park(self, store, err: RecordRefused, attempts: int) -> None:
        self._attempts.pop(err.seq, None)
        done = await store.on_connection(lambda db: park_row(db, err.seq, str(err.__cause__ or err), attempts))
        await store.on_connection(parked_count)
        self.careful = 0
        if done:
            self.parked += 1
            PARKED_TOTAL.inc()
            log.error("outbox row parked: kafka refuses it for good; the rows behind it flow on",
                      seq=err.seq, attempts=attempts, error=repr(err.__cause__ or err),
                      hint="fix the cause, then `xueliang outbox resend` or POST /outbox/parked/resend")
