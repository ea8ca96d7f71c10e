from __future__ import annotations

import pytest

from streamapp.cli import build_parser, faust_worker_argv
from streamapp.settings import Settings


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
