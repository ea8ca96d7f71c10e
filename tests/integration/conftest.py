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
from tests.integration.support import ROOT, Worker, free_port, unique_id

TEST_KAFKA_PORT = int(os.environ.get("STREAMAPP_TEST_KAFKA_PORT", "29092"))


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
        broker.down()


@pytest.fixture
def worker_env(bootstrap: str, tmp_path: Path) -> dict[str, str]:
    """Environment for a worker of a fresh app: its own app id, topic prefix and tables."""
    name = unique_id()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMAPP_")}
    env.update(
        {
            "STREAMAPP_BOOTSTRAP_SERVERS": bootstrap,
            "STREAMAPP_APP_ID": name,
            "STREAMAPP_TOPIC_PREFIX": f"{name}.",
            "STREAMAPP_DATA_DIR": str(tmp_path / "tables"),
            "STREAMAPP_PARTITIONS": "4",
            # These tests run the orders service alone: its sagas wait for participants
            # that are not there, and must not time out and cancel orders mid-test.
            "STREAMAPP_SAGA_STEP_TIMEOUT_MS": "3600000",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


@pytest.fixture
def start_worker(worker_env: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    """Start workers of the test's app; every one is stopped at the end of the test."""
    started: list[Worker] = []

    def start(port: int | None = None) -> Worker:
        env = {**worker_env, "STREAMAPP_WEB_PORT": str(port or free_port())}
        worker = Worker(env, tmp_path / f"worker-{env['STREAMAPP_WEB_PORT']}.log").start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()
