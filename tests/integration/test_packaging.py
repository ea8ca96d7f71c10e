"""`pip install .` without extras gives a working `streamapp` command (a fresh venv)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.support import ROOT, free_port

pytestmark = pytest.mark.integration


#: No broker there: `kafka status` must say stopped whatever else runs on this machine.
ENV = {"PATH": "/usr/bin:/bin", "HOME": str(Path.home())}


def run(*argv: str | Path, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in argv],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        check=check,
        env=ENV,
    )


def test_the_package_alone_runs_its_commands(tmp_path: Path) -> None:
    ENV["STREAMAPP_LOCAL_KAFKA_PORT"] = str(free_port())
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    pip = [venv / "bin" / "python", "-m", "pip", "install", "--quiet"]
    run(*pip, "--disable-pip-version-check", ROOT, cwd=tmp_path)
    streamapp = venv / "bin" / "streamapp"
    elsewhere = tmp_path / "elsewhere"  # no config/, no Procfile: the defaults
    elsewhere.mkdir()

    assert "run" in run(streamapp, "--help", cwd=elsewhere).stdout
    settings = run(streamapp, "settings", cwd=elsewhere).stdout
    assert "STREAMAPP_WEB_BIND" in settings and "127.0.0.1" in settings
    status = run(streamapp, "kafka", "status", cwd=elsewhere, check=False)
    assert status.returncode == 3 and "stopped" in status.stdout, status  # LSB: 3
    # What `streamapp run` starts the workers with is installed too.
    assert run(venv / "bin" / "honcho", "--version", cwd=elsewhere).returncode == 0
    missing = run(streamapp, "run", cwd=elsewhere, check=False)
    assert missing.returncode == 2 and "no Procfile" in missing.stderr
