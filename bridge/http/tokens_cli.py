"""`xueliang tokens add|list|revoke`: the API's tokens from the command line (stored hashed; each
change in the audit log as `cli:<user>`). The root's command line registers it with its config
loader (`load(path)`: the service config, or exit 2 naming the problem)."""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

EXIT_CONFIG = 2


def token_paths(args: argparse.Namespace) -> tuple[Path, Path]:
    """(tokens file, console db): from --file, else the config's, else $XUELIANG_DATA_DIR or .data."""
    if args.config:
        cfg = args.load(args.config)
        tokens, db = cfg.tokens_path, cfg.console_db_path
    else:
        data = Path(os.environ.get("XUELIANG_DATA_DIR", ".data"))
        tokens, db = data / "tokens.yaml", data / "console.sqlite3"
    if args.file:
        tokens = Path(args.file)
        if not args.config:
            db = tokens.parent / "console.sqlite3"
    return tokens, db


def cmd_tokens(args: argparse.Namespace) -> int:
    import getpass

    from bridge.http.auth import TokenFileError, new_token, read_token_file
    from bridge.http.token_admin import add_token, cameras_problem, revoke_tokens, token_lines, token_yaml

    path, db_path = token_paths(args)
    try:
        tokens = read_token_file(path)
    except TokenFileError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_CONFIG
    actor = f"cli:{getpass.getuser()}"
    if args.tokens_command == "list":
        for line in token_lines(tokens):
            print(line)
        return 0
    if args.tokens_command == "revoke":
        count = revoke_tokens(path, db_path, tokens, args.name, actor)
        if not count:
            print(f"{path}: no token named or with id {args.name!r}", file=sys.stderr)
            return 1
        print(f"revoked {count} token(s) of {args.name!r}")
        return 0
    problem = cameras_problem(args.role, args.cameras)
    if problem is not None:
        print(f"--cameras: {problem}", file=sys.stderr)
        return EXIT_CONFIG
    if args.print_yaml:  # for `api.auth.tokens` in a config file; nothing is written
        token, record = new_token(args.name, args.role, args.cameras)
        print(token_yaml(record), end="")
    else:
        token, record = add_token(path, db_path, tokens, args.name, args.role, args.cameras, actor)
        print(f"added {args.role} token {record.id} for {args.name!r} to {path}", file=sys.stderr)
    print("the token is shown once; keep it secret:", file=sys.stderr)
    print(token)
    return 0


def add_parser(sub, load: Callable[[str | None], Any]) -> None:
    """Register `tokens add|list|revoke`."""
    tk = sub.add_parser("tokens", help="API tokens (stored hashed)").add_subparsers(dest="tokens_command", required=True)
    for name, helptext in (("add", "make a token and print it once"), ("list", "list tokens (never the tokens themselves)"),
                           ("revoke", "remove a token by name or id")):
        s = tk.add_parser(name, help=helptext)
        s.add_argument("-c", "--config", help="service config: its api.auth.tokens_file and audit log")
        s.add_argument("--file", help="token file (default: <data_dir>/tokens.yaml)")
        if name == "add":
            s.add_argument("--role", required=True, choices=["viewer", "operator", "admin"])
            s.add_argument("--cameras", type=lambda v: [c for c in v.split(",") if c], default=[],
                           help="operator: comma-separated camera ids it may tune, or '*'")
            s.add_argument("--print-yaml", action="store_true",
                           help="print the hashed record for api.auth.tokens instead of writing the file")
        if name != "list":
            s.add_argument("name", help="who holds it (add), or the name or id to revoke")
        s.set_defaults(func=cmd_tokens, load=load)
