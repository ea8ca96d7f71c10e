from __future__ import annotations

import http.server
import socket
import threading
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from streamapp.kafka.topics import TopicError
from streamapp.settings import Settings
from streamapp.tools import verify as verify_module
from streamapp.tools.verify import (
    Report,
    ViewError,
    check_inventory,
    check_payments,
    check_replies,
    check_sagas,
    check_streams,
    fetch_json,
    inventory_levels,
    payment_accounts,
    run,
)


def ev(aggregate: str, version: int, event_id: str | None = None, **data: Any) -> dict[str, Any]:
    return {
        "eventId": event_id or f"{aggregate}-{version}",
        "aggregateId": aggregate,
        "version": version,
        "data": data,
    }


def test_clean_streams_with_identical_republished_copies_pass() -> None:
    report = Report()
    check_streams([ev("a", 1), ev("a", 2), ev("a", 2), ev("b", 1)], report)
    assert report.ok
    assert report.checked == {"events": 3, "event records": 4, "streams": 2}


def test_gaps_conflicts_and_double_application_are_reported_with_ids() -> None:
    report = Report()
    check_streams(
        [
            ev("a", 1),
            ev("a", 3),  # gap at 2
            ev("b", 1),
            ev("b", 1, "other"),  # two different events at b v1
            ev("c", 1, "x"),
            ev("c", 2, "x"),
        ],  # one event (command) applied twice
        report,
    )
    assert not report.ok
    joined = "\n".join(report.violations)
    assert "a: gap, versions [2] missing" in joined
    assert "b v1: 2 different events share the version" in joined
    assert "event x stored at [('c', 1), ('c', 2)]: a command applied twice" in joined


def test_every_named_command_needs_a_reply() -> None:
    report = Report()
    commands = [orjson.dumps({"commandId": "c1"}), orjson.dumps({"commandId": "c2"}), b"{bad"]
    check_replies(commands, [{"commandId": "c1"}], report)
    assert report.violations == ["1 command(s) without a reply: ['c2']"]
    assert report.checked["commands"] == 2


# -- invariants 1-3 ---------------------------------------------------------------------
def event(kind: str, saga: str, event_id: str | None = None, **data: Any) -> dict[str, Any]:
    """A participant / saga / order event envelope (only what verify reads)."""
    return {
        "eventId": event_id or f"{saga}-{kind}",
        "eventType": kind,
        "aggregateId": saga,
        "data": data,
    }


def lines(**units: int) -> list[dict[str, Any]]:
    return [{"sku": sku, "quantity": n} for sku, n in units.items()]


def orders_and_sagas(
    ends: dict[str, tuple[str | None, tuple[str, ...]]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """order id -> (terminal saga event or None, the order's own events after creation)."""
    orders, sagas = [], []
    for order, (terminal, order_events) in ends.items():
        orders.append(event("OrderCreated", order))
        orders.extend(event(kind, order) for kind in order_events)
        sagas.append(event("SagaStarted", order))
        if terminal:
            sagas.append(event(terminal, order))
    return orders, sagas


def test_sagas_that_end_once_as_their_orders_do_pass_and_failed_ones_are_noted() -> None:
    orders, sagas = orders_and_sagas(
        {
            "o1": ("SagaCompleted", ("OrderConfirmed",)),
            "o2": ("SagaCompensated", ("OrderCancelled",)),
            "o3": ("SagaFailed", ()),
        }
    )
    sagas.append(event("SagaCompleted", "o1"))  # a re-published copy: same eventId
    report = Report()
    outcomes = check_sagas(orders, sagas, report)
    assert report.ok, report.violations
    assert outcomes == {"o1": "COMPLETED", "o2": "COMPENSATED", "o3": "FAILED"}
    assert report.notes == ["1 saga(s) FAILED (a compensation failed permanently): ['o3']"]
    assert report.checked == {
        "orders": 3,
        "sagas": 3,
        "completed": 1,
        "compensated": 1,
        "failed": 1,
    }


def test_a_compensated_saga_that_then_fails_counts_as_failed() -> None:
    orders, sagas = orders_and_sagas({"late": ("SagaCompensated", ("OrderCancelled",))})
    sagas.append(event("SagaFailed", "late"))  # a late success's compensation gave up
    report = Report()
    assert check_sagas(orders, sagas, report) == {"late": "FAILED"}
    assert report.ok, report.violations
    assert report.checked["failed"] == 1


def test_saga_violations_name_the_orders() -> None:
    orders, sagas = orders_and_sagas(
        {
            "running": (None, ()),
            "twice": ("SagaCompleted", ("OrderConfirmed",)),
            "unconfirmed": ("SagaCompleted", ()),
            "done-but-cancelled": ("SagaCompleted", ("OrderConfirmed", "OrderCancelled")),
            "uncancelled": ("SagaCompensated", ()),
            "undone-but-confirmed": ("SagaCompensated", ("OrderCancelled", "OrderConfirmed")),
        }
    )
    orders.append(event("OrderCreated", "no-saga"))
    sagas.append(event("SagaCompensated", "twice"))
    report = Report()
    outcomes = check_sagas(orders, sagas, report)
    assert "twice" not in outcomes and "running" not in outcomes
    assert report.violations == [
        "2 created order(s) whose saga is not terminal (or never started): ['no-saga', 'running']",
        "1 saga(s) with more than one terminal outcome: [\"twice ['COMPENSATED', 'COMPLETED']\"]",
        "1 COMPLETED saga(s) whose order has no OrderConfirmed: ['unconfirmed']",
        "1 COMPLETED saga(s) whose order was cancelled: ['done-but-cancelled']",
        "1 COMPENSATED saga(s) whose order has no OrderCancelled: ['uncancelled']",
        "1 COMPENSATED saga(s) whose order was confirmed: ['undone-but-confirmed']",
    ]


def test_violations_show_at_most_ten_ids() -> None:
    report = Report()
    report.flag([f"o{n:02d}" for n in range(12)], "things")
    assert report.violations == [f"12 things: {[f'o{n:02d}' for n in range(10)]}"]


STOCK = {"A": 10, "B": 5, "C": 0}


def test_inventory_that_the_events_explain_passes() -> None:
    events = [
        event("InventoryReserved", "done", lines=lines(A=2)),
        event("InventoryReserved", "done", lines=lines(A=2)),  # re-published copy
        event("InventoryCommitted", "done", lines=lines(A=2)),
        event("InventoryReserved", "undone", lines=lines(B=1)),
        event("InventoryReleased", "undone", lines=lines(B=1)),
        event("InventoryReservationFailed", "short", reason="C: wanted 1, available 0"),
        event("InventoryReleased", "short", lines=[]),  # nothing was held
        event("InventoryReserved", "in-flight", lines=lines(A=1)),
    ]
    outcomes = {"done": "COMPLETED", "undone": "COMPENSATED", "short": "COMPENSATED"}
    levels = {"A": (7, 1, 2), "B": (5, 0, 0), "C": (0, 0, 0)}
    report = Report()
    check_inventory(events, outcomes, levels, STOCK, report)
    assert report.ok, report.violations
    assert report.checked == {"skus": 3}


def test_inventory_saga_violations() -> None:
    events = [
        # compensated, still holding its reservation
        event("InventoryReserved", "held", lines=lines(A=1)),
        # compensated, but took the stock
        event("InventoryReserved", "taken", lines=lines(A=1)),
        event("InventoryCommitted", "taken", lines=lines(A=1)),
        # completed, never reserved
        event("InventoryReservationFailed", "unreserved", reason="?"),
        # completed, reservation never committed
        event("InventoryReserved", "uncommitted", lines=lines(A=1)),
        # completed, released and committed
        event("InventoryReserved", "both", lines=lines(B=1)),
        event("InventoryReleased", "both", lines=lines(B=1)),
        event("InventoryCommitted", "both", lines=lines(B=1)),
        # two different reservations for one saga
        event("InventoryReserved", "double", "d1", lines=lines(A=1)),
        event("InventoryReserved", "double", "d2", lines=lines(A=2)),
        # released more than it reserved
        event("InventoryReserved", "more", lines=lines(A=1)),
        event("InventoryReleased", "more", lines=lines(A=2)),
        # released what it never reserved
        event("InventoryReleased", "ghost", lines=lines(A=1)),
        event("InventoryReserved", "broken", lines=[{"sku": "A"}]),
    ]
    outcomes = {
        "held": "COMPENSATED",
        "taken": "COMPENSATED",
        "unreserved": "COMPLETED",
        "uncommitted": "COMPLETED",
        "both": "COMPLETED",
    }
    report = Report()
    check_inventory(events, outcomes, None, STOCK, report)
    assert report.violations == [
        "1 malformed inventory event(s): ['broken-InventoryReserved']",
        "1 sku(s) of a saga reserved twice with different units: ['double/A']",
        "1 sku(s) of a saga released or committed, never reserved: ['ghost/A']",
        "1 sku(s) of a saga released or committed other units than reserved: ['more/A']",
        "1 sku(s) of a saga both released and committed: ['both/B']",
        "1 COMPENSATED saga(s) still holding a reservation (no InventoryReleased): ['held']",
        "1 COMPENSATED saga(s) that committed stock: ['taken']",
        "1 COMPLETED saga(s) without InventoryReserved: ['unreserved']",
        "1 COMPLETED saga(s) whose stock was not committed: ['uncommitted']",
        "1 COMPLETED saga(s) with a released reservation: ['both']",
    ]
    assert "skus" not in report.checked  # no view: only the events were checked


def test_multi_sku_sagas_are_all_or_nothing_per_sku() -> None:
    """One reservation per sku (the saga fans out): each sku is settled on its own."""
    events = [
        # compensated: A released, B never reserved (failed): fine
        event("InventoryReserved", "ok-comp", "ok-comp-a", lines=lines(A=1)),
        event("InventoryReservationFailed", "ok-comp", "ok-comp-b", reason="short"),
        event("InventoryReleased", "ok-comp", "ok-comp-c", lines=lines(A=1)),
        # compensated: A released, B's late reservation never released
        event("InventoryReserved", "leak", "leak-a", lines=lines(A=1)),
        event("InventoryReleased", "leak", "leak-b", lines=lines(A=1)),
        event("InventoryReserved", "leak", "leak-c", lines=lines(B=2)),
        # completed: both skus committed
        event("InventoryReserved", "ok-done", "ok-done-a", lines=lines(A=1)),
        event("InventoryReserved", "ok-done", "ok-done-b", lines=lines(B=1)),
        event("InventoryCommitted", "ok-done", "ok-done-c", lines=lines(B=1)),
        event("InventoryCommitted", "ok-done", "ok-done-d", lines=lines(A=1)),
        # completed: B committed, A reserved but never committed
        event("InventoryReserved", "half", "half-a", lines=lines(A=1)),
        event("InventoryReserved", "half", "half-b", lines=lines(B=1)),
        event("InventoryCommitted", "half", "half-c", lines=lines(B=1)),
        # completed: the order had A and B, only B was reserved and committed
        event("InventoryReserved", "short", "short-a", lines=lines(B=1)),
        event("InventoryCommitted", "short", "short-b", lines=lines(B=1)),
    ]
    outcomes = {
        "ok-comp": "COMPENSATED",
        "leak": "COMPENSATED",
        "ok-done": "COMPLETED",
        "half": "COMPLETED",
        "short": "COMPLETED",
    }
    ordered = {saga: {"A", "B"} for saga in outcomes}
    report = Report()
    check_inventory(events, outcomes, None, STOCK, report, ordered)
    assert report.violations == [
        "1 COMPENSATED saga(s) still holding a reservation (no InventoryReleased): ['leak']",
        "1 COMPLETED saga(s) that did not reserve every sku of the order: ['short']",
        "1 COMPLETED saga(s) whose stock was not committed: ['half']",
    ]


def test_inventory_view_violations() -> None:
    events = [
        event("InventoryReserved", "open", lines=lines(A=2)),
        event("InventoryReserved", "done", lines=lines(B=1)),
        event("InventoryCommitted", "done", lines=lines(B=1)),
    ]
    levels = {
        "A": (8, 1, 0),  # 9 units of 10, and 2 are held by an open reservation
        "B": (6, 0, 0),  # 6 units of 5, and the committed unit is missing
        "D": (1, 0, 0),  # never seeded; C (seeded) is missing
    }
    report = Report()
    check_inventory(events, {"done": "COMPLETED"}, levels, STOCK, report)
    assert report.violations == [
        "1 sku(s) in the inventory view that were never seeded: ['D']",
        "1 seeded sku(s) missing from the inventory view: ['C']",
        "2 sku(s) whose available+reserved+committed is not the seeded stock: "
        "['A: 8+1+0 != 10', 'B: 6+0+0 != 5']",
        "1 sku(s) whose reserved units differ from open reservations: "
        "['A: view 1, open reservations 2']",
        "1 sku(s) whose committed units differ from InventoryCommitted: ['B: view 0, committed 1']",
    ]


LIMITS = {"c1": Decimal("100.00"), "c2": Decimal("50"), "c3": Decimal("0")}


def paid(saga: str, customer: str, amount: str, event_id: str | None = None) -> dict[str, Any]:
    return event("PaymentProcessed", saga, event_id, customerId=customer, amount=amount)


def refunded(saga: str, customer: str, amount: str, event_id: str | None = None) -> dict[str, Any]:
    return event("PaymentRefunded", saga, event_id, customerId=customer, amount=amount)


def test_payments_that_the_events_explain_pass() -> None:
    events = [
        paid("done", "c1", "10.00"),
        paid("done", "c1", "10.00"),  # re-published copy
        paid("undone", "c1", "5.5"),
        refunded("undone", "c1", "5.50"),  # the same amount, written differently
        event("PaymentFailed", "declined", customerId="c3", amount="9.99", reason="limit"),
        refunded("declined", "c3", "0"),  # nothing had been charged
        paid("in-flight", "c2", "20"),
    ]
    outcomes = {"done": "COMPLETED", "undone": "COMPENSATED", "declined": "COMPENSATED"}
    accounts = {
        "c1": (Decimal("100"), Decimal("10.00")),
        "c2": (Decimal("50"), Decimal("20")),
        "c3": (Decimal("0"), Decimal("0")),
    }
    report = Report()
    check_payments(events, outcomes, accounts, LIMITS, report)
    assert report.ok, report.violations
    assert report.checked == {"accounts": 3}


def test_payment_saga_violations() -> None:
    events = [
        paid("twice", "c1", "1", "t1"),
        paid("twice", "c1", "1", "t2"),  # another eventId: a second charge
        paid("two-refunds", "c1", "2"),
        refunded("two-refunds", "c1", "2", "r1"),
        refunded("two-refunds", "c1", "2", "r2"),
        refunded("unpaid", "c1", "3"),
        paid("short", "c1", "4"),
        refunded("short", "c1", "3"),
        paid("kept", "c1", "5"),
        event("PaymentFailed", "free", customerId="c1", amount="6", reason="limit"),
        paid("given-back", "c1", "7"),
        refunded("given-back", "c1", "7"),
        event("PaymentProcessed", "broken", customerId="c1", amount=7.5),  # a float
    ]
    outcomes = {
        "two-refunds": "COMPENSATED",
        "kept": "COMPENSATED",
        "free": "COMPLETED",
        "given-back": "COMPLETED",
    }
    report = Report()
    check_payments(events, outcomes, None, LIMITS, report)
    assert report.violations == [
        "1 malformed payment event(s): ['broken-PaymentProcessed']",
        "1 saga(s) charged more than once: ['twice']",
        "1 saga(s) refunded more than once: ['two-refunds']",
        "1 saga(s) refunded without a payment: ['unpaid']",
        "1 saga(s) refunded another amount than charged: ['short: charged 4, refunded 3']",
        "1 COMPENSATED saga(s) charged but not refunded: ['kept']",
        "1 COMPLETED saga(s) without a payment: ['free']",
        "1 COMPLETED saga(s) that were refunded: ['given-back']",
    ]
    assert "accounts" not in report.checked


def test_payments_view_violations() -> None:
    events = [paid("s1", "c1", "30"), paid("s2", "c2", "60"), paid("s3", "gone", "1")]
    accounts = {
        "c1": (Decimal("90"), Decimal("30")),  # limit changed
        "c2": (Decimal("50"), Decimal("60")),  # above its limit
        "c4": (Decimal("10"), Decimal("1")),  # never seeded, balance without payments
    }
    report = Report()
    check_payments(events, {}, accounts, LIMITS, report)
    assert report.violations == [
        "1 account(s) in the payments view that were never seeded: ['c4']",
        "1 seeded account(s) missing from the payments view: ['c3']",
        "1 account(s) whose credit limit is not the seeded one: ['c1: 90 != seeded 100.00']",
        "1 account(s) with a balance above the credit limit: ['c2: 60 > 50']",
        "2 account(s) whose balance is not charges minus refunds: "
        "['c4: view 1, charged-refunded 0', 'gone: view None, charged-refunded 1']",
    ]


def test_views_with_another_shape_are_view_errors() -> None:
    assert inventory_levels(
        {"items": [{"sku": "A", "available": 1, "reserved": 0, "committed": 2}]}
    ) == {"A": (1, 0, 2)}
    assert payment_accounts(
        {"accounts": [{"customerId": "c", "creditLimit": "5", "balance": "1.5"}]}
    ) == {"c": (Decimal(5), Decimal("1.5"))}
    for body in (
        {},
        {"items": [{"sku": "A"}]},
        {"items": [{"sku": "A", "available": "1", "reserved": 0, "committed": 0}]},
        [],
    ):
        with pytest.raises(ViewError, match="inventory view: unexpected body"):
            inventory_levels(body)
    for body in (
        {"accounts": [{"customerId": "c", "creditLimit": 5, "balance": "0"}]},
        {"accounts": [{"customerId": "c", "creditLimit": "NaN", "balance": "0"}]},
    ):
        with pytest.raises(ViewError, match="payments view: unexpected body"):
            payment_accounts(body)


def test_an_unreachable_or_broken_view_is_a_view_error() -> None:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    with pytest.raises(ViewError, match=f"127.0.0.1:{port}/inventory"):
        fetch_json(f"http://127.0.0.1:{port}/inventory", timeout=2)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, body = (200, b"<html>") if self.path == "/html" else (503, b"{}")
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        with pytest.raises(ViewError, match="not JSON"):
            fetch_json(f"{base}/html", timeout=2)
        with pytest.raises(ViewError, match="HTTP 503"):
            fetch_json(f"{base}/inventory", timeout=2)
    finally:
        server.shutdown()
        server.server_close()


def fake_topics(
    monkeypatch: pytest.MonkeyPatch, topics: dict[str, list[Any]], views: dict[str, Any]
) -> None:
    """verify's I/O without a broker: topic name -> values, URL path -> body or error."""

    async def read_all(bootstrap: str, topic: str) -> list[Any]:
        if topic not in topics:
            raise TopicError(f"topic {topic} has no partitions (error 3)")
        return [
            SimpleNamespace(
                value=v if isinstance(v, bytes) else orjson.dumps(v), partition=0, offset=n
            )
            for n, v in enumerate(topics[topic])
        ]

    def fetch_json(url: str, timeout: float = 0) -> Any:
        for path, body in views.items():
            if url.endswith(path):
                if isinstance(body, Exception):
                    raise body
                return body
        raise AssertionError(url)

    monkeypatch.setattr(verify_module, "read_all", read_all)
    monkeypatch.setattr(verify_module, "fetch_json", fetch_json)


SEEDS = """
[inventory]
A = 10
[payments]
c1 = "100"
[shipping]
countries = ["NL"]
"""


def test_verify_reads_topics_and_views_and_reports_what_it_could_not_read(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seeds = tmp_path / "seeds.toml"
    seeds.write_text(SEEDS)
    settings = Settings(seeds_file=seeds, topic_prefix="t.")
    created = {**event("OrderCreated", "o1"), "version": 1}
    confirmed = {**event("OrderConfirmed", "o1"), "version": 2}
    fake_topics(
        monkeypatch,
        {
            "t.orders.events": [created, confirmed],
            "t.orders.commands": [{"commandId": "c"}],
            "t.orders.replies": [{"commandId": "c"}, b"not json"],
            "t.sagas.events": [event("SagaCompleted", "o1"), b"not json"],
            "t.inventory.events": [
                event("InventoryReserved", "o1", lines=lines(A=1)),
                event("InventoryCommitted", "o1", lines=lines(A=1)),
            ],
            # payments.events is missing
        },
        {
            "/inventory": {"items": [{"sku": "A", "available": 9, "reserved": 0, "committed": 1}]},
            "/payments/accounts": ViewError("http://x/payments/accounts: Connection refused"),
        },
    )
    report = run(settings)
    assert report.violations == [
        "1 record(s) on t.sagas.events that are not event envelopes: ['0@1']",
        "cannot read topic t.payments.events: topic t.payments.events has no partitions (error 3)",
        "cannot check the view: http://x/payments/accounts: Connection refused",
    ]
    assert report.checked == {
        "events": 2,
        "event records": 2,
        "streams": 1,
        "commands": 1,
        "orders": 1,
        "sagas": 1,
        "completed": 1,
        "compensated": 0,
        "failed": 0,
        "skus": 1,
    }

    # invariant 4 alone reads neither sagas, seeds nor views: the output stays as before
    only_4 = run(settings.replace(seeds_file=tmp_path / "absent.toml"), [4])
    assert only_4.ok
    assert list(only_4.checked) == ["events", "event records", "streams", "commands"]
