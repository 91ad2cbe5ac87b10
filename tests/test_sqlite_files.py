"""The service's SQLite files opened by several processes at once, as workers sharing a data dir do."""
from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest
import yaml

from bridge.store.outbox import EventStore
from bridge.store.sqlite_files import FileInUseError
from tests.helpers import REPO
from tests.service_proc import demo_config

OPEN_AT = textwrap.dedent("""
    import sys, time
    from bridge.{module} import {cls}
    start = float(sys.argv[2])
    while time.time() < start:  # all openers race for the new file in the same millisecond
        pass
    {cls}(sys.argv[1])
""")


@pytest.mark.parametrize("module, cls", [("store.dead_letters", "DeadLetterStore"), ("store.audit", "ConsoleDb")])
def test_processes_opening_one_new_file_together_all_succeed(tmp_path, module, cls):
    # Before connect_wal, one of two such openers failed with "database is locked" half the time.
    code = OPEN_AT.format(module=module, cls=cls)
    for round_ in range(6):
        path = tmp_path / f"{round_}.sqlite3"
        start = time.time() + 1.0
        procs = [subprocess.Popen([sys.executable, "-c", code, str(path), str(start)], cwd=REPO,
                                  stderr=subprocess.PIPE, text=True) for _ in range(3)]
        errors = [p.communicate(timeout=60)[1] for p in procs]
        assert [p.returncode for p in procs] == [0, 0, 0], errors


def test_an_outbox_has_one_owner(tmp_path):
    path = tmp_path / "outbox.sqlite3"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom bridge.store.outbox import EventStore\n"
         "s = EventStore(sys.argv[1]); print('open', flush=True); time.sleep(60)", str(path)],
        cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert any(line.strip() == "open" for line in holder.stdout)  # its log lines come first
        with pytest.raises(FileInUseError, match=f"event store {path} is in use by another process "
                                                 f"\\(pid {holder.pid}\\); give each service"):
            EventStore(path)
    finally:
        holder.kill()
        holder.wait()
    EventStore(path).close()  # the kernel released the dead holder's claim


def test_service_sharing_a_running_services_outbox_is_refused(tmp_path):
    doc = demo_config(tmp_path)
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(doc))
    store = EventStore(tmp_path / "outbox.sqlite3")  # as a running service holds it
    try:
        run = subprocess.run([sys.executable, "-m", "xueliang.cli", "run", "-c", str(tmp_path / "a.yaml"),
                              "--port", "0"], cwd=REPO, capture_output=True, text=True, timeout=120)
    finally:
        store.close()
    assert run.returncode == 2, run.stderr[-2000:]
    assert f"a.yaml: outbox.path: event store {tmp_path / 'outbox.sqlite3'} is in use by another process" \
        in run.stderr
