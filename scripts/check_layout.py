"""Check the tree's layout: imports go one way, modules stay small, the root only wires.

    python scripts/check_layout.py        # exit 0 and a summary, or exit 1 naming every fault

Rules (docs/layout.md):

1. Imports follow the flow of a frame: `ingest` imports none of the other packages, `detectors`
   only `ingest`, `bridge` only `ingest` and `detectors`, and nothing outside the composition
   root (`xueliang`) imports the root. Imports inside functions count too.
2. No module of the four packages (or of `scripts/`) is over 400 lines.
3. The root never imports a private name (`_name`, or a module `_name`) of another package, nor
   reaches one as an attribute of a module it imported: it wires public parts only.
4. One name per concept: no two modules of the packages share a file name (`__init__.py`,
   `__main__.py` aside).
5. The composition root is at most 1,500 lines.

Run by `make test` before the suite.
"""
from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

PACKAGES = ("ingest", "detectors", "bridge", "xueliang")
ROOT = "xueliang"
# What each package may import besides itself.
ALLOWED = {
    "ingest": set(),
    "detectors": {"ingest"},
    "bridge": {"ingest", "detectors"},
    "xueliang": {"ingest", "detectors", "bridge"},
}
MAX_LINES = 400
MAX_ROOT_LINES = 1500
SHARED_NAMES = {"__init__.py", "__main__.py"}


def modules(repo: Path, package: str) -> list[Path]:
    return sorted(p for p in (repo / package).rglob("*.py") if "__pycache__" not in p.parts)


def imported(tree: ast.AST) -> list[tuple[int, str, list[str]]]:
    """(line, module, imported names) of every absolute import in a module, nested ones too."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name, []) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module, [alias.name for alias in node.names]))
    return found


def private_attributes(tree: ast.AST, foreign: dict[str, str]) -> list[tuple[int, str]]:
    """`module._name` where `module` is a name bound to another package's module."""
    hits = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
                and isinstance(node.value, ast.Name) and node.value.id in foreign):
            hits.append((node.lineno, f"{foreign[node.value.id]}.{node.attr}"))
    return hits


def check(repo: Path) -> tuple[list[str], dict[str, int]]:
    faults: list[str] = []
    lines_per_package: dict[str, int] = {}
    names: dict[str, list[str]] = defaultdict(list)
    files = [p for package in PACKAGES for p in modules(repo, package)]
    files += sorted((repo / "scripts").glob("*.py"))
    for path in files:
        rel = path.relative_to(repo).as_posix()
        text = path.read_text(encoding="utf-8")
        n_lines = len(text.splitlines())
        package = path.relative_to(repo).parts[0]
        if package in PACKAGES:
            lines_per_package[package] = lines_per_package.get(package, 0) + n_lines
            if path.name not in SHARED_NAMES:
                names[path.name].append(rel)
        if n_lines > MAX_LINES:
            faults.append(f"{rel}: {n_lines} lines, more than {MAX_LINES}")
        if package not in PACKAGES:
            continue
        try:
            tree = ast.parse(text, filename=rel)
        except SyntaxError as exc:
            faults.append(f"{rel}:{exc.lineno}: does not parse: {exc.msg}")
            continue
        foreign: dict[str, str] = {}
        for line, module, names_imported in imported(tree):
            top = module.split(".")[0]
            if top not in PACKAGES or top == package:
                continue
            if top not in ALLOWED[package]:
                faults.append(f"{rel}:{line}: imports {module}: {package} may import only "
                              f"{', '.join(sorted(ALLOWED[package])) or 'none of the other packages'}")
            if package == ROOT:
                private = [part for part in module.split(".") if part.startswith("_") and not part.startswith("__")]
                private += [name for name in names_imported if name.startswith("_")]
                if private:
                    faults.append(f"{rel}:{line}: the root imports a private name of {module}: {', '.join(private)}")
        if package == ROOT:
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    top = node.module.split(".")[0]
                    for alias in node.names:
                        if top in PACKAGES and top != ROOT:
                            foreign[alias.asname or alias.name] = f"{node.module}.{alias.name}"
                elif isinstance(node, ast.Import):
                    for alias in node.names:
                        if alias.name.split(".")[0] in PACKAGES and alias.name.split(".")[0] != ROOT and alias.asname:
                            foreign[alias.asname] = alias.name
            for line, name in private_attributes(tree, foreign):
                faults.append(f"{rel}:{line}: the root reaches a private name: {name}")
    for name, where in sorted(names.items()):
        if len(where) > 1:
            faults.append(f"{name}: one name for different modules: {', '.join(sorted(where))}")
    root_lines = lines_per_package.get(ROOT, 0)
    if root_lines > MAX_ROOT_LINES:
        faults.append(f"{ROOT}/: {root_lines} lines, more than {MAX_ROOT_LINES} for the composition root")
    return faults, lines_per_package


def main(argv: list[str]) -> int:
    repo = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parents[1]
    faults, lines = check(repo)
    for fault in faults:
        print(fault)
    summary = ", ".join(f"{package}/ {lines.get(package, 0)} lines" for package in PACKAGES)
    if faults:
        print(f"layout: {len(faults)} faults ({summary})")
        return 1
    print(f"layout: ok ({summary})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
