"""Render the Graphviz diagrams under docs/ (docs/*.dot -> docs/*.png), e.g. docs/scale-out.png.

Needs Graphviz's `dot` (Debian: `apt-get install graphviz`); only re-rendering needs it, not the
build or the tests, which read the committed PNG. `make docs-images` runs this.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs"
DPI = 90  # about 1500 px wide for the scale-out page: readable on GitHub without zooming


def main() -> int:
    dot = shutil.which("dot")
    if dot is None:
        print("render_diagram: Graphviz `dot` not found; install it (Debian: apt-get install graphviz)", file=sys.stderr)
        return 1
    sources = sorted(DOCS.glob("*.dot"))
    for src in sources:
        out = src.with_suffix(".png")
        subprocess.run([dot, "-Tpng", f"-Gdpi={DPI}", str(src), "-o", str(out)], check=True)
        print(f"rendered {out.relative_to(DOCS.parent)}")
    return 0 if sources else 1


if __name__ == "__main__":
    raise SystemExit(main())
