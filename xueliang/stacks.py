"""What a process is doing, for when it does not stop: stacks of its threads and asyncio tasks.

`xueliang run` writes them to its log on SIGUSR1 (`kill -USR1 <pid>`), and by itself when a part of
its shutdown outlives its time: a service that must be killed says where it hung.
"""
from __future__ import annotations

import asyncio
import io
import sys
import threading
import traceback

import structlog

log = structlog.get_logger()


def thread_stacks() -> dict[str, str]:
    """Every thread's current stack, by thread name."""
    names = {t.ident: t.name for t in threading.enumerate()}
    return {f"{names.get(ident, '?')} ({ident})": "".join(traceback.format_stack(frame))
            for ident, frame in sys._current_frames().items()}


def task_stacks(tasks=None) -> dict[str, str]:
    """Each asyncio task's stack (where it awaits now), by task name; all tasks of the running loop by default."""
    out = {}
    for task in tasks if tasks is not None else asyncio.all_tasks():
        buf = io.StringIO()
        task.print_stack(file=buf)
        out[task.get_name()] = buf.getvalue()
    return out


def log_stacks(reason: str) -> None:
    log.warning("process.stacks", reason=reason, threads=thread_stacks(), tasks=task_stacks())


async def wait_bounded(aws, timeout_s: float, what: str) -> None:
    """Wait for tasks to finish, at most `timeout_s`; then log the ones left, with their stacks
    and every thread's, and go on (a shutdown must not hang on one part)."""
    tasks = [a for a in aws if a is not None]
    if not tasks:
        return
    done, pending = await asyncio.wait(tasks, timeout=timeout_s)
    for t in done:  # what they raised was logged where it happened; read here so asyncio does not warn
        if not t.cancelled():
            t.exception()
    if pending:
        log.error("service.stop_part_timeout", part=what, timeout_s=timeout_s,
                  pending=sorted(t.get_name() for t in pending), tasks=task_stacks(pending), threads=thread_stacks())
