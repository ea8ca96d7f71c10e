"""config/prometheus/: the scrape config, the alerting rules and their unit tests pass
promtool, and the scrape targets are the Procfile's workers."""

from __future__ import annotations

import re
import shutil
import subprocess

from tests.integration.support import ROOT

CONFIG = ROOT / "config" / "prometheus"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    assert binary, "promtool is missing: `make system-deps` (Debian package prometheus)"
    return subprocess.run([binary, *args], cwd=CONFIG, capture_output=True, text=True, timeout=120)


def test_the_scrape_config_is_valid() -> None:
    result = promtool("check", "config", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_alerting_rules_are_valid() -> None:
    result = promtool("check", "rules", "alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_fires_and_stays_quiet_as_its_unit_tests_say() -> None:
    result = promtool("test", "rules", "alerts.test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    rules = (CONFIG / "alerts.yml").read_text()
    tests = (CONFIG / "alerts.test.yml").read_text()
    alerts = re.findall(r"- alert: (\w+)", rules)
    assert len(alerts) >= 6
    for alert in alerts:  # each one is shown firing (exp_alerts with labels) and not
        cases = re.findall(rf"alertname: {alert}\n\s+exp_alerts:(.*)", tests)
        assert " []" in cases and "" in cases, f"{alert} needs a firing and a quiet case"


def test_the_scrape_targets_are_the_first_worker_of_each_procfile_process_type() -> None:
    processes = re.findall(r"^(\w+):", (ROOT / "Procfile").read_text(), re.MULTILINE)
    assert processes == ["orders", "inventory", "payments", "shipping"]
    targets = re.findall(
        r'- targets: \["127\.0\.0\.1:(\d+)"\]\n\s+labels:\n\s+service: (\w+)',
        (CONFIG / "prometheus.yml").read_text(),
    )
    # honcho: instance 0 of process type i listens on 6066 + 100 * i
    assert targets == [(str(6066 + 100 * i), name) for i, name in enumerate(processes)]
