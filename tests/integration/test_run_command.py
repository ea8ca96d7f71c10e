"""The README's run command: brings everything up, Ctrl-C leaves nothing behind, reruns."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from tests.integration.support import (
    BIN,
    ROOT,
    free_port,
    free_port_block,
    http_json,
    processes_matching,
    processes_with_env,
    unique_id,
    wait_for,
)

pytestmark = pytest.mark.integration


def run_once(env: dict[str, str], log_path: Path, kafka_config: str) -> None:
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [str(BIN / "streamapp"), "run", "--workers", "2"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:

        def ready() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"`run` exited early:\n{log_path.read_text()[-3000:]}")
            return "[streamapp] ready:" in log_path.read_text()

        wait_for(ready, 240, "`run` to be ready")
        base = int(env["STREAMAPP_WEB_PORT"])
        for port in (base, base + 1):  # ready (a late rebalance may make one wait a moment)
            wait_for(
                lambda port=port: http_json(f"http://127.0.0.1:{port}/ready")[1]["ready"],
                30,
                f"worker on {port} to be ready",
            )
        assert len(processes_matching(kafka_config)) == 1, describe(
            processes_matching(kafka_config)
        )
        ours = processes_with_env("STREAMAPP_APP_ID", env["STREAMAPP_APP_ID"])
        assert len(ours) >= 3, describe(ours)  # run, honcho, workers

        proc.send_signal(signal.SIGINT)  # what Ctrl-C does
        assert proc.wait(90) == 0, log_path.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
    left = processes_with_env("STREAMAPP_APP_ID", env["STREAMAPP_APP_ID"])
    left += processes_matching(kafka_config)
    assert left == [], describe(left) + log_path.read_text()[-3000:]
    assert "[streamapp] stopped." in log_path.read_text()


def describe(pids: list[int]) -> str:
    """Pids with their command lines, for assertion messages."""
    lines = []
    for pid in pids:
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            cmd = "?"
        lines.append(f"{pid}: {cmd[:200]}")
    return "\n".join(lines) + "\n"


def test_run_starts_everything_and_ctrl_c_stops_all_of_it_twice(tmp_path: Path) -> None:
    name = unique_id("run")
    kafka_port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMAPP_")}
    env.update(
        {
            "STREAMAPP_APP_ID": name,
            "STREAMAPP_TOPIC_PREFIX": f"{name}.",
            "STREAMAPP_PARTITIONS": "4",
            # honcho: orders base, base + 1; the others base + 100 i (+ 1): all free
            "STREAMAPP_WEB_PORT": str(free_port_block([0, 1, 100, 101, 200, 201, 300, 301])),
            "STREAMAPP_DATA_DIR": str(tmp_path / "tables"),
            "STREAMAPP_LOCAL_KAFKA_PORT": str(kafka_port),
            "STREAMAPP_LOCAL_KAFKA_CONTROLLER_PORT": str(free_port()),
            "STREAMAPP_LOCAL_KAFKA_STATE_DIR": str(tmp_path / "kafka"),
            "STREAMAPP_LOCAL_KAFKA_HEAP": "384m",
        }
    )
    kafka_config = str(tmp_path / "kafka" / "server.properties")
    run_once(env, tmp_path / "run1.log", kafka_config)
    run_once(env, tmp_path / "run2.log", kafka_config)  # and it works again
