"""`streamapp kafka up|down|status` as a user runs them: real JVM, real ports."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.integration.support import BIN, ROOT, free_port, processes_matching, run_cli

pytestmark = pytest.mark.integration


@pytest.fixture
def broker_env(tmp_path: Path) -> dict[str, str]:
    port = free_port()
    controller = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMAPP_")}
    env.update(
        {
            "STREAMAPP_LOCAL_KAFKA_PORT": str(port),
            "STREAMAPP_LOCAL_KAFKA_CONTROLLER_PORT": str(controller),
            "STREAMAPP_LOCAL_KAFKA_STATE_DIR": str(tmp_path / "kafka"),
            "STREAMAPP_LOCAL_KAFKA_HEAP": "384m",
        }
    )
    return env


def test_up_is_idempotent_status_tells_the_truth_and_down_leaves_no_jvm(
    broker_env: dict[str, str], tmp_path: Path
) -> None:
    config = str(tmp_path / "kafka" / "server.properties")
    port = broker_env["STREAMAPP_LOCAL_KAFKA_PORT"]
    try:
        stopped = run_cli(["kafka", "status"], broker_env)
        assert stopped.returncode == 3 and "stopped" in stopped.stdout

        # Two `up` at the same moment still give one broker.
        racing = [
            subprocess.Popen(
                [str(BIN / "streamapp"), "kafka", "up"],
                cwd=ROOT,
                env=broker_env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        for proc in racing:
            out, err = proc.communicate(timeout=180)
            assert proc.returncode == 0, err
            assert "running" in out and f"127.0.0.1:{port}" in out
        jvms = processes_matching(config)
        assert len(jvms) == 1

        second = run_cli(["kafka", "up"], broker_env)
        assert second.returncode == 0, second.stderr
        assert processes_matching(config) == jvms  # the same single broker
        assert f"pid={jvms[0]}" in second.stdout

        status = run_cli(["kafka", "status"], broker_env)
        assert status.returncode == 0 and f"running pid={jvms[0]}" in status.stdout

        logs = run_cli(["kafka", "logs", "-n", "200"], broker_env)
        assert "Kafka Server started" in logs.stdout

        started = time.monotonic()
        down = run_cli(["kafka", "down"], broker_env, timeout=60)
        took = time.monotonic() - started
        assert down.returncode == 0 and "kafka stopped" in down.stdout
        assert took < 30
        assert processes_matching(config) == []

        after = run_cli(["kafka", "status"], broker_env)
        assert after.returncode == 3 and "stopped" in after.stdout
        again = run_cli(["kafka", "down"], broker_env)
        assert again.returncode == 0 and "was not running" in again.stdout
    finally:
        run_cli(["kafka", "down"], broker_env, timeout=60)


def test_status_is_truthful_after_the_jvm_is_killed(
    broker_env: dict[str, str], tmp_path: Path
) -> None:
    config = str(tmp_path / "kafka" / "server.properties")
    try:
        assert run_cli(["kafka", "up"], broker_env).returncode == 0
        [pid] = processes_matching(config)
        os.kill(pid, 9)
        deadline = time.monotonic() + 10
        while processes_matching(config) and time.monotonic() < deadline:
            time.sleep(0.1)
        status = run_cli(["kafka", "status"], broker_env)
        assert status.returncode == 3
        assert "stopped" in status.stdout and "stale pid file" in status.stdout
        # and `up` recovers from it: same data dir, new JVM
        assert run_cli(["kafka", "up"], broker_env).returncode == 0
        assert len(processes_matching(config)) == 1
    finally:
        run_cli(["kafka", "down"], broker_env, timeout=60)


def test_missing_jdk_gives_one_actionable_line(broker_env: dict[str, str]) -> None:
    env = {**broker_env, "PATH": str(BIN)}  # the venv only: no java anywhere
    env.pop("JAVA_HOME", None)
    result = run_cli(["kafka", "up"], env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "java not found" in lines[0] and "apt-get install openjdk-17" in lines[0]
