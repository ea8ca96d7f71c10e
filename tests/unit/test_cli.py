from __future__ import annotations

import pytest

from streamapp.cli import build_parser, faust_worker_argv, setting_shown
from streamapp.settings import Settings, load_settings


@pytest.mark.parametrize(
    ("level", "faust_level"),
    [("debug", "debug"), ("info", "info"), ("warning", "warn"), ("critical", "crit")],
)
def test_worker_command_speaks_fausts_log_levels(level: str, faust_level: str) -> None:
    argv = faust_worker_argv(Settings(log_level=level), ["--web-bind", "0.0.0.0"])
    assert argv[1:] == [
        "-m",
        "faust",
        "-A",
        "streamapp.app",
        "worker",
        "-l",
        faust_level,
        "--web-bind",
        "0.0.0.0",
    ]


def test_parser_knows_every_documented_command() -> None:
    parser = build_parser()
    for argv in (
        ["kafka", "up"],
        ["kafka", "logs", "-f"],
        ["topics"],
        ["topics", "create"],
        ["run", "--workers", "2"],
        ["probe", "--key", "k"],
        ["settings"],
        ["worker"],
    ):
        assert parser.parse_args(argv).func is not None
    with pytest.raises(SystemExit):
        parser.parse_args(["kafka", "restart"])


def test_settings_shows_what_an_automatic_zero_resolves_to() -> None:
    embedded = load_settings(environ={})
    assert setting_shown(embedded, "consumer_session_timeout_ms") == "0 (auto: 3000)"
    assert setting_shown(embedded, "replication_factor") == "0 (auto: 1)"
    external = load_settings(environ={"STREAMAPP_BOOTSTRAP_SERVERS": "kafka:9092"})
    assert setting_shown(external, "consumer_session_timeout_ms") == "0 (auto: 6000)"
    fixed = load_settings(environ={"STREAMAPP_CONSUMER_SESSION_TIMEOUT_MS": "4000"})
    assert setting_shown(fixed, "consumer_session_timeout_ms") == "4000"
    assert setting_shown(embedded, "partitions") == str(embedded.partitions)
