"""Which workers the dashboard asks (streamapp.dashboard.workers)."""

from __future__ import annotations

from streamapp.dashboard.workers import (
    WorkerRef,
    configured_workers,
    procfile_workers,
    service_of,
)


def test_the_setting_lists_base_urls_comma_separated() -> None:
    assert configured_workers(" http://a:1/, http://b:2 ,,http://a:1") == [
        WorkerRef("http://a:1"),
        WorkerRef("http://b:2"),
    ]
    assert configured_workers("") == []


def test_without_the_setting_the_other_services_are_at_the_procfile_ports() -> None:
    # three order workers (honcho: 6066, 6067, 6068); this one is 6067
    found = procfile_workers(
        "127.0.0.1", ["http://127.0.0.1:6067/", "http://127.0.0.1:6068", "http://127.0.0.1:6066"]
    )
    assert found == [
        WorkerRef("http://127.0.0.1:6066", "orders"),
        WorkerRef("http://127.0.0.1:6067", "orders"),
        WorkerRef("http://127.0.0.1:6068", "orders"),
        WorkerRef("http://127.0.0.1:6166", "inventory"),
        WorkerRef("http://127.0.0.1:6266", "payments"),
        WorkerRef("http://127.0.0.1:6366", "shipping"),
    ]


def test_a_lone_worker_with_another_base_port() -> None:
    assert [r.url for r in procfile_workers("h", ["http://h:7000"])] == [
        "http://h:7000",
        "http://h:7100",
        "http://h:7200",
        "http://h:7300",
    ]


def test_urls_without_a_port_give_only_the_orders_workers() -> None:
    assert procfile_workers("h", ["http://h"]) == [WorkerRef("http://h", "orders")]


def test_the_service_comes_from_the_app_id_health_reports() -> None:
    assert service_of("shop", "shop") == "orders"
    assert service_of("shop-payments", "shop") == "payments"
    assert service_of("shop-unknown", "shop") is None
    assert service_of("other", "shop") is None
    assert service_of(None, "shop") is None
