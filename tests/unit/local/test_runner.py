"""`streamapp run --workers`: how many workers of each service honcho starts, and where."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamapp.cli import build_parser
from streamapp.local.runner import honcho_command, worker_counts, worker_urls
from streamapp.settings import load_settings


def test_a_number_is_the_orders_workers_and_one_of_each_participant() -> None:
    assert worker_counts("3") == {"orders": 3, "inventory": 1, "payments": 1, "shipping": 1}


def test_every_service_can_be_scaled_and_the_rest_get_one() -> None:
    assert worker_counts("orders=3, inventory=2,payments=2") == {
        "orders": 3,
        "inventory": 2,
        "payments": 2,
        "shipping": 1,
    }


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("billing=2", "unknown service 'billing'"),
        ("orders=x", "expected orders=<number of workers>"),
        ("orders", "expected orders=<number of workers>"),
        ("0", "orders: 1 to 99 workers, got 0"),
        ("inventory=100", "inventory: 1 to 99 workers, got 100"),
        ("orders=2,orders=3", "orders is named twice"),
        ("", "expected N or service=N"),
        (",", "expected N or service=N"),
        ("orders=²", "expected orders=<number of workers>"),
    ],
)
def test_a_bad_spec_says_what_is_wrong(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        worker_counts(spec)
    with pytest.raises(SystemExit):  # argparse prints the message and exits 2
        build_parser().parse_args(["run", "--workers", spec])


def test_honcho_runs_the_counts_and_the_urls_follow_the_procfile_ports() -> None:
    counts = worker_counts("orders=2,inventory=2")
    command = honcho_command(Path("/x/Procfile"), 6066, counts)
    assert command[-2:] == ["-c", "orders=2,inventory=2,payments=1,shipping=1"]
    settings = load_settings(environ={"STREAMAPP_WEB_PORT": "6066"})
    assert [url for _, url in worker_urls(settings, counts)] == [
        "http://127.0.0.1:6066",
        "http://127.0.0.1:6067",
        "http://127.0.0.1:6166",
        "http://127.0.0.1:6167",
        "http://127.0.0.1:6266",
        "http://127.0.0.1:6366",
    ]
    parsed = build_parser().parse_args(["run", "--workers", "orders=2,inventory=2"])
    assert parsed.workers == counts
