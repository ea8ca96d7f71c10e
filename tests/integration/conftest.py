"""Integration fixtures: one real Kafka broker for the session, isolated names per test.

The session broker is the project's own embedded broker on its own ports and state
directory (so a developer's `make run` broker is untouched), started once and stopped
at the end. Set STREAMAPP_TEST_BOOTSTRAP to run against an already running cluster.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from streamapp.local.broker import LocalBroker
from streamapp.settings import load_settings
from tests.integration.support import ROOT, Worker, free_port, fresh_app_env, kill_all

TEST_KAFKA_PORT = int(os.environ.get("STREAMAPP_TEST_KAFKA_PORT", "29092"))
#: LocalBroker.down's timeout: SIGTERM, SIGKILL after (this - 3) s, then up to 3 s more.
BROKER_STOP_TIMEOUT_S = 5.0


def local_broker(state_dir: Path, port: int) -> LocalBroker:
    """A LocalBroker configured like the default one but on its own ports and state dir."""
    settings = load_settings(environ={}, config_file=ROOT / "config" / "streamapp.toml").replace(
        local_kafka_port=port,
        local_kafka_controller_port=port + 1,
        local_kafka_state_dir=state_dir,
        local_kafka_heap="384m",
    )
    return LocalBroker(settings)


@pytest.fixture(scope="session")
def bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    external = os.environ.get("STREAMAPP_TEST_BOOTSTRAP")
    if external:
        yield external
        return
    broker = local_broker(tmp_path_factory.mktemp("kafka"), TEST_KAFKA_PORT)
    broker.up()
    try:
        yield broker.bootstrap
    finally:
        # Its state is thrown away: no need for a controlled shutdown, which takes ~10 s
        # with the thousands of partitions a session leaves (SIGKILL after 2 s).
        broker.down(timeout=BROKER_STOP_TIMEOUT_S)


@pytest.fixture
def worker_env(bootstrap: str, tmp_path: Path) -> dict[str, str]:
    """Environment for a worker of a fresh app: its own app id, topic prefix and tables."""
    return fresh_app_env(bootstrap, tmp_path / "tables")


@pytest.fixture
def start_worker(worker_env: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    """Start workers of the test's app; every one is killed at the end of the test."""
    started: list[Worker] = []

    def start(port: int | None = None) -> Worker:
        env = {**worker_env, "STREAMAPP_WEB_PORT": str(port or free_port())}
        worker = Worker(env, tmp_path / f"worker-{env['STREAMAPP_WEB_PORT']}.log").start()
        started.append(worker)
        return worker

    yield start
    kill_all(started)
