"""`xueliang outbox parked|resend`: the records Kafka refused for good, and re-sending them.

Works on the outbox file directly (SQLite allows it while the service runs): a re-sent row becomes
pending again and the running service's dispatcher picks it up at its next poll. Each re-send is
recorded in the audit log as `cli:<user>`. The root's command line registers it with its config
loader (`load(path)`: the service config, or exit 2 naming the problem).
"""
from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Callable
from contextlib import closing
from typing import Any

EXIT_USAGE = 2


def add_parser(sub, load: Callable[[str | None], Any]) -> None:
    ob = sub.add_parser("outbox", help="the durable outbox: parked records").add_subparsers(
        dest="outbox_command", required=True)
    s = ob.add_parser("parked", help="list the records Kafka refused for good (parked), oldest first")
    s.add_argument("-c", "--config", help="service config (its outbox.path)")
    s.add_argument("--json", action="store_true", help="one JSON object per line")
    s.set_defaults(func=cmd_outbox, load=load)
    s = ob.add_parser("resend", help="make parked records pending again, after fixing the cause")
    s.add_argument("-c", "--config", help="service config (its outbox.path and audit log)")
    s.add_argument("seqs", nargs="*", type=int, help="outbox seqs to re-send (see `xueliang outbox parked`)")
    s.add_argument("--all", action="store_true", help="re-send every parked record")
    s.set_defaults(func=cmd_outbox, load=load)


def cmd_outbox(args: argparse.Namespace) -> int:
    from bridge.store.audit import ConsoleDb
    from bridge.store.parked_records import parked_line, parked_rows, release_rows
    from bridge.store.sqlite_files import connect_wal

    cfg = args.load(args.config)
    if not cfg.outbox_path.exists():
        print(f"outbox.path: {cfg.outbox_path} does not exist (has the service run?)", file=sys.stderr)
        return EXIT_USAGE
    if args.outbox_command == "resend" and args.all == bool(args.seqs):
        print("resend: give the seqs to re-send, or --all", file=sys.stderr)
        return EXIT_USAGE
    with closing(connect_wal(cfg.outbox_path, "event store", isolation_level=None)) as db:
        if args.outbox_command == "parked":
            rows = parked_rows(db, limit=1_000_000)
            for r in rows:
                print(json.dumps(r, ensure_ascii=False) if args.json else parked_line(r))
            print(f"{len(rows)} parked record(s) in {cfg.outbox_path}", file=sys.stderr)
            return 0
        done = release_rows(db, None if args.all else args.seqs)
    missing = sorted(set(args.seqs) - set(done))
    if done:
        ConsoleDb(cfg.console_db_path).record(f"cli:{getpass.getuser()}", "outbox.resend", None, {"seqs": done})
    print(f"re-sent {len(done)} record(s): {' '.join(map(str, done)) or '-'}; they go out after the rows already queued",
          file=sys.stderr)
    if missing:
        print(f"not parked: {' '.join(map(str, missing))}", file=sys.stderr)
        return 1
    return 0
