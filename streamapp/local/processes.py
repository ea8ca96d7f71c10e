"""Waiting and stopping process groups: the one way the local broker and the runner do it."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable


def wait_until(check: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    """Poll `check` until it holds (True) or `timeout` seconds passed (False)."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def kill_group(pgid: int, sig: int) -> None:
    """Signal a process group we started (its leader may have exited already)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def signal_group(pid: int, sig: int) -> None:
    """Signal pid's process group only if pid leads it; otherwise just pid (a pid read
    from a file may be anyone's)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if pid > 1 and os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        elif pid > 1:
            os.kill(pid, sig)


def stop_group(
    pid: int,
    first: int,
    timeout: float,
    alive: Callable[[], bool],
    *,
    kill_grace: float = 3.0,
    leader_checked: bool = True,
) -> None:
    """Send `first` (SIGTERM, SIGINT) to pid's process group, SIGKILL it if it is still
    `alive()` after `timeout` s, then wait up to `kill_grace` s for it to go.
    ``leader_checked`` False: pid is a group leader we started (see kill_group)."""
    send = signal_group if leader_checked else kill_group
    send(pid, first)
    if not wait_until(lambda: not alive(), timeout):
        send(pid, signal.SIGKILL)
        wait_until(lambda: not alive(), kill_grace, 0.05)
