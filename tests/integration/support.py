"""Helpers for integration tests: free ports, HTTP polling, worker subprocesses."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import orjson

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
T = TypeVar("T")


def run_cli(
    args: list[str], env: dict[str, str], timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    """`streamapp <args>` from the repository root, its output captured as text."""
    return subprocess.run(
        [str(BIN / "streamapp"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_port_block(offsets: Iterable[int], low: int = 21000, high: int = 28900) -> int:
    """A base port with base + each offset free, below the kernel's ephemeral range
    (32768+), where a port free now can be taken a moment later by an outgoing
    connection (seen: honcho's base + 1 taken). The Procfile gives process type i,
    instance n the port base + 100 i + n."""
    wanted = list(offsets)
    for _ in range(200):
        base = random.randrange(low, high)
        try:
            with contextlib.ExitStack() as held:
                for offset in wanted:
                    sock = held.enter_context(socket.socket())
                    sock.bind(("127.0.0.1", base + offset))
        except OSError:
            continue
        return base
    raise AssertionError(f"no free block of ports for offsets {wanted}")


def unique_id(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


#: The suite starts its own embedded broker, whose group.min.session.timeout.ms is 1 s, and
#: runs workers at the one-node default of 3 s. Pointed at other brokers
#: (STREAMAPP_TEST_BOOTSTRAP, or a benchmark's STREAMAPP_BOOTSTRAP_SERVERS) the settings'
#: automatic choice for external servers (6 s, a stock Kafka's minimum) stands.
EMBEDDED_SESSION: dict[str, str] = (
    {}
    if os.environ.get("STREAMAPP_TEST_BOOTSTRAP") or os.environ.get("STREAMAPP_BOOTSTRAP_SERVERS")
    else {"STREAMAPP_CONSUMER_SESSION_TIMEOUT_MS": "3000"}
)


def fresh_app_env(bootstrap: str, data_dir: Path) -> dict[str, str]:
    """Environment for an orders worker of a fresh app: its own app id, topic prefix and
    tables (under data_dir). Add STREAMAPP_WEB_PORT."""
    name = unique_id()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMAPP_")}
    env.update(
        {
            "STREAMAPP_BOOTSTRAP_SERVERS": bootstrap,
            "STREAMAPP_APP_ID": name,
            "STREAMAPP_TOPIC_PREFIX": f"{name}.",
            "STREAMAPP_DATA_DIR": str(data_dir),
            "STREAMAPP_PARTITIONS": "4",
            # These workers run the orders service alone: its sagas wait for participants
            # that are not there, and must not time out and cancel orders mid-test.
            "STREAMAPP_SAGA_STEP_TIMEOUT_MS": "3600000",
            # The suite's own embedded broker allows 1 s, but is external to the
            # settings, which would pick a stock broker's 6 s.
            **EMBEDDED_SESSION,
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def http_json(url: str, timeout: float = 5.0) -> tuple[int, Any]:
    status, body = http_get(url, timeout)
    return status, orjson.loads(body)


def http_post_json(
    url: str, body: Any, timeout: float = 15.0, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    request = urllib.request.Request(
        url,
        data=orjson.dumps(body),
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status), orjson.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, orjson.loads(exc.read())


def wait_for(check: Callable[[], T | None], timeout: float, what: str, every: float = 0.2) -> T:
    """Poll check() until it returns a truthy value; fail the test after timeout seconds."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except (OSError, urllib.error.URLError, ValueError) as exc:
            last_error = exc
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} ({last_error!r})")


def _live_processes() -> Iterator[tuple[int, Path]]:
    """(pid, /proc/<pid>) of every live, non-zombie process but this one (Linux)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            yield int(entry.name), entry


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


def processes_matching(text: str) -> list[int]:
    """Pids whose command line contains text."""
    needle = text.encode()
    return [
        pid
        for pid, proc in _live_processes()
        if needle in _read(proc / "cmdline").replace(b"\0", b" ")
    ]


def processes_with_env(name: str, value: str) -> list[int]:
    """Pids whose environment has name=value: finds every process a test started."""
    needle = f"{name}={value}".encode()
    return [
        pid for pid, proc in _live_processes() if needle in _read(proc / "environ").split(b"\0")
    ]


class Worker:
    """A real `faust -A streamapp.app worker` subprocess with its own port and table dir."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.log_path = log_path
        self.port = int(env["STREAMAPP_WEB_PORT"])
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def table_dir(self) -> Path:
        app_id = self.env["STREAMAPP_APP_ID"]
        service = self.env.get("STREAMAPP_SERVICE", "orders")
        if service != "orders":
            app_id = f"{app_id}-{service}"
        return Path(self.env["STREAMAPP_DATA_DIR"]) / f"{app_id}-{self.port}"

    def pause(self) -> None:
        """SIGSTOP: the worker holds its partitions but processes nothing (until resume,
        which must come before the session timeout)."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGCONT)

    def start(self) -> Worker:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [str(BIN / "faust"), "-A", "streamapp.app", "worker", "-l", "info"],
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def wait_ready(self, timeout: float = 120.0) -> None:
        def ready() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited with {self.proc.returncode}:\n{self.log()}")
            return http_get(f"{self.url}/ready", timeout=2)[0] == 200

        wait_for(ready, timeout, f"worker {self.url} to be ready")

    def kill9(self) -> None:
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self) -> None:
        """SIGTERM to the worker's group, not waiting: stop() waits (see stop_all)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)

    def stop(self, timeout: float = 30.0) -> None:
        self.terminate()
        self.wait_stopped(timeout)

    def wait_stopped(self, timeout: float = 30.0) -> None:
        """Wait for the worker to exit; SIGKILL it after timeout s."""
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill9()

    def log(self, lines: int = 60) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def stop_all(workers: Iterable[Worker], timeout: float = 30.0) -> None:
    """Stop workers at once: SIGTERM to each, then wait for each (SIGKILL after timeout).
    A worker takes a second or two to shut down; one after the other, that adds up."""
    workers = list(workers)
    for worker in workers:
        worker.terminate()
    deadline = time.monotonic() + timeout
    for worker in workers:
        worker.wait_stopped(timeout=max(deadline - time.monotonic(), 1.0))


def kill_all(workers: Iterable[Worker]) -> None:
    """SIGKILL workers (their process groups) and wait for them: a fixture's teardown,
    where nothing is checked of the stop (a graceful stop is stop_all's, and what
    test_stop, test_otlp_and_logs and test_run_command test), and waiting a second or
    two per worker for it adds up over the suite."""
    workers = [worker for worker in workers if worker.proc is not None]
    for worker in workers:
        assert worker.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.proc.pid, signal.SIGKILL)
    for worker in workers:
        assert worker.proc is not None
        worker.proc.wait(10)


def settle(*workers: Worker, timeout: float = 60.0) -> None:
    """Wait until every worker is ready and owns partitions (the group has settled)."""
    for worker in workers:
        worker.wait_ready()

    def settled() -> bool:
        answers = [http_json(f"{w.url}/ready") for w in workers]
        return all(status == 200 and body["assignedPartitions"] > 0 for status, body in answers)

    wait_for(settled, timeout, f"{len(workers)} workers to own partitions")
