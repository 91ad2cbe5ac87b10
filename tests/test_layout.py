"""scripts/check_layout.py: it passes on the tree, and fails on each fault it exists to catch."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "check_layout.py"


def run(repo: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), str(repo)], capture_output=True, text=True, timeout=120)


def tree(tmp_path: Path, files: dict[str, str]) -> Path:
    """A small tree with the four packages, each module as given."""
    base = {
        "ingest/__init__.py": "", "ingest/frame.py": "X = 1\n",
        "detectors/__init__.py": "", "detectors/rules.py": "from ingest.frame import X\n",
        "bridge/__init__.py": "", "bridge/sink.py": "from detectors.rules import X\nfrom ingest.frame import X\n",
        "xueliang/__init__.py": "", "xueliang/wiring.py": "from bridge.sink import X\n",
    }
    base.update(files)
    for rel, text in base.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (tmp_path / "scripts").mkdir(exist_ok=True)
    return tmp_path


def test_the_tree_passes():
    result = run(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("layout: ok")


def test_a_clean_small_tree_passes(tmp_path):
    result = run(tree(tmp_path, {}))
    assert result.returncode == 0, result.stdout


def test_an_import_against_the_direction_fails_and_names_the_line(tmp_path):
    repo = tree(tmp_path, {"detectors/rules.py": "from ingest.frame import X\n\n\ndef f():\n    from bridge.sink import X\n"})
    result = run(repo)
    assert result.returncode == 1
    assert "detectors/rules.py:5: imports bridge.sink: detectors may import only ingest" in result.stdout


def test_importing_the_root_from_a_package_fails(tmp_path):
    result = run(tree(tmp_path, {"bridge/sink.py": "import xueliang.wiring\n"}))
    assert result.returncode == 1
    assert "bridge/sink.py:1: imports xueliang.wiring" in result.stdout


def test_a_module_over_400_lines_fails(tmp_path):
    result = run(tree(tmp_path, {"ingest/frame.py": "X = 1\n" * 401}))
    assert result.returncode == 1
    assert "ingest/frame.py: 401 lines, more than 400" in result.stdout


def test_the_root_importing_a_private_name_fails(tmp_path):
    repo = tree(tmp_path, {
        "bridge/sink.py": "X = 1\n_hidden = 2\n",
        "xueliang/wiring.py": "from bridge.sink import X, _hidden\n",
        "xueliang/cli.py": "from bridge import sink\n\nsink._hidden\n",
    })
    result = run(repo)
    assert result.returncode == 1
    assert "xueliang/wiring.py:1: the root imports a private name of bridge.sink: _hidden" in result.stdout
    assert "xueliang/cli.py:3: the root reaches a private name: bridge.sink._hidden" in result.stdout


def test_two_modules_with_one_name_fail(tmp_path):
    result = run(tree(tmp_path, {"ingest/config.py": "", "bridge/config.py": ""}))
    assert result.returncode == 1
    assert "config.py: one name for different modules: bridge/config.py, ingest/config.py" in result.stdout


def test_a_root_over_1500_lines_fails(tmp_path):
    files = {f"xueliang/part{i}.py": "X = 1\n" * 390 for i in range(4)}
    result = run(tree(tmp_path, files))
    assert result.returncode == 1
    assert "xueliang/: 1561 lines, more than 1500" in result.stdout
