"""``streamapp run``: broker + topics + the Procfile's workers, stopped together on Ctrl-C."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from streamapp.kafka.topics import ensure_topics
from streamapp.local.cluster import local_kafka
from streamapp.local.processes import kill_group, stop_group
from streamapp.settings import SERVICE_PORT_STEP, SERVICES, Settings
from streamapp.web.client import fetch_status

READY_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 30.0


def worker_counts(spec: str) -> dict[str, int]:
    """``--workers``: ``N`` (N orders workers, one of each participant) or
    ``service=N,...`` (e.g. ``orders=3,inventory=2``; a service not named gets one).
    ValueError says what is wrong."""
    text = spec.strip()
    if text.isdecimal() and text.isascii():
        counts = {"orders": int(text)}
    else:
        counts = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            service, _, number = part.partition("=")
            service = service.strip()
            if service not in SERVICES:
                raise ValueError(f"unknown service {service!r} (one of {', '.join(SERVICES)})")
            if not (number.strip().isdecimal() and number.strip().isascii()):
                raise ValueError(f"{part!r}: expected {service}=<number of workers>")
            if service in counts:
                raise ValueError(f"{service} is named twice")
            counts[service] = int(number)
        if not counts:
            raise ValueError("expected N or service=N,... (e.g. orders=3,inventory=2)")
    counts = {service: counts.get(service, 1) for service in SERVICES}
    for service, count in counts.items():
        if not 1 <= count < SERVICE_PORT_STEP:
            raise ValueError(f"{service}: 1 to {SERVICE_PORT_STEP - 1} workers, got {count}")
    return counts


def honcho_command(procfile: Path, base_port: int, workers: dict[str, int]) -> list[str]:
    """honcho gives process n of type i PORT = base_port + 100 * i + n (see Procfile);
    ``workers``: how many of each service (worker_counts)."""
    return [
        sys.executable,
        "-m",
        "honcho",
        "start",
        "-f",
        str(procfile),
        "-d",
        str(procfile.parent),
        "-p",
        str(base_port),
        "-c",
        ",".join(f"{service}={workers[service]}" for service in SERVICES),
    ]


def worker_urls(settings: Settings, workers: dict[str, int]) -> list[tuple[str, str]]:
    """(service, url) of every worker honcho starts."""
    urls = []
    for index, service in enumerate(SERVICES):
        for n in range(workers[service]):
            port = settings.web_port + SERVICE_PORT_STEP * index + n
            urls.append((service, f"http://{settings.web_host}:{port}"))
    return urls


#: The routes to show for each service when the system is up.
SERVICE_ROUTES = {
    "orders": "/orders  /sagas",
    "inventory": "/inventory",
    "payments": "/payments/accounts",
    "shipping": "/shipping/countries",
}


def wait_ready(
    urls: list[str], proc: subprocess.Popen[bytes], timeout: float, stopping: Callable[[], bool]
) -> bool:
    """Poll every worker's /ready until all answer 200 in two rounds in a row (a worker
    that joins later rebalances the ones already ready), or the deadline, honcho's end
    or a stop."""
    deadline = time.monotonic() + timeout
    rounds_ready = 0
    while time.monotonic() < deadline and proc.poll() is None and not stopping():
        if all(fetch_status(f"{u}/ready", 2.0) == 200 for u in urls):
            rounds_ready += 1
            if rounds_ready == 2:
                return True
        else:
            rounds_ready = 0
        time.sleep(0.5)
    return False


def _stop_group(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGINT honcho (it stops its workers), then SIGKILL the whole group at the deadline."""
    if proc.poll() is None:
        stop_group(
            proc.pid,
            signal.SIGINT,
            timeout,
            lambda: proc.poll() is None,
            kill_grace=5.0,
            leader_checked=False,
        )
    # Workers honcho could not stop must not outlive it.
    kill_group(proc.pid, signal.SIGKILL)


def run_system(settings: Settings, procfile: Path, workers: dict[str, int]) -> int:
    """Start everything, print the URLs, block until Ctrl-C/SIGTERM, stop everything."""
    from streamapp.app import app

    broker = local_kafka(settings) if settings.uses_local_kafka else None
    started_broker = False
    if broker is not None:
        # Only a broker that was not there at all is ours to stop (not one starting up).
        started_broker = broker.status().state == "stopped"
        for line in broker.up().describe().splitlines():
            print(f"[streamapp] {line}", flush=True)
    stop_requested = False

    def request_stop(signum: int, _frame: object) -> None:
        nonlocal stop_requested
        stop_requested = True

    previous = {s: signal.signal(s, request_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    proc: subprocess.Popen[bytes] | None = None
    try:
        report = asyncio.run(ensure_topics(settings.bootstrap, app.topic_specs()))
        print(
            f"[streamapp] topics: {len(report.created)} created, {len(report.existing)} existing",
            flush=True,
        )
        # The Procfile calls `streamapp`: make this interpreter's scripts dir come first so
        # it works without an activated venv.
        scripts = str(Path(sys.executable).parent)
        env = {
            **os.environ,
            "PATH": os.pathsep.join([scripts, os.environ.get("PATH", "")]),
            "PYTHONUNBUFFERED": "1",
        }
        proc = subprocess.Popen(
            honcho_command(procfile, settings.web_port, workers),
            env=env,
            start_new_session=True,
        )
        urls = worker_urls(settings, workers)
        if wait_ready([u for _, u in urls], proc, READY_TIMEOUT_S, lambda: stop_requested):
            print("[streamapp] ready:", flush=True)
            for service, url in urls:
                routes = "  ".join(f"{url}{r}" for r in SERVICE_ROUTES[service].split())
                print(f"[streamapp]   {service:<9} {routes}  {url}/ready  {url}/metrics")
            print("[streamapp] Ctrl-C stops the workers and the broker.", flush=True)
        elif not stop_requested:
            reason = "exited" if proc.poll() is not None else "did not become ready in time"
            print(f"[streamapp] workers {reason}; stopping", flush=True)
            return 1
        while not stop_requested and proc.poll() is None:
            time.sleep(0.2)
        return 0 if stop_requested else 1
    finally:
        print("[streamapp] stopping ...", flush=True)
        if proc is not None:
            _stop_group(proc, STOP_TIMEOUT_S)
        if broker is not None and started_broker:
            broker.down()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        print("[streamapp] stopped.", flush=True)
