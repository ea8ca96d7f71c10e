"""A saga heals itself when its end command is dead-lettered (no operator action).

Inventory fails every CommitInventory (failure injection, no retries: straight to the
DLQ), so the COMPLETED saga's stock stays reserved; the saga re-sends the command (same
id) on its deadline until InventoryCommitted confirms it. Once inventory runs without
the injected failure, a re-send commits the stock and `streamapp verify` passes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.support import http_get, http_post_json, wait_for
from tests.integration.system import System

pytestmark = pytest.mark.integration


@pytest.fixture
def system(bootstrap: str, tmp_path: Path) -> Iterator[System]:
    deployment = System(
        bootstrap,
        tmp_path,
        inject_failure_rate="1",
        inject_failure_commands="CommitInventory",
        retry_max_attempts="0",  # a failed command goes to the DLQ at once
        saga_compensation_timeout_ms="1500",  # the first re-send interval
    )
    deployment.start()
    yield deployment
    deployment.stop()


def dead_letters(system: System, service: str) -> int:
    metrics = http_get(f"{system.url(service)}/metrics")[1].decode()
    topic = re.escape(system.topic(f"{service}.commands"))
    found = re.search(
        rf'streamapp_dead_letters_total{{[^}}]*topic="{topic}"[^}}]*}} (\S+)', metrics
    )
    return int(float(found.group(1))) if found else 0


def test_a_dead_lettered_commit_is_sent_again_until_inventory_commits(system: System) -> None:
    status, body = http_post_json(
        f"{system.url('orders')}/orders",
        {
            "orderId": "order-heal-1",
            "customerId": "cust-happy",
            "items": [{"sku": "SKU-HAPPY", "quantity": 3, "unitPrice": "10.00"}],
            "shippingAddress": {"country": "NL"},
        },
    )
    assert status == 201, body
    system.wait_saga("order-heal-1", "COMPLETED", timeout=60)
    wait_for(lambda: dead_letters(system, "inventory") >= 2, 30, "CommitInventory re-sent")
    assert system.stock("SKU-HAPPY") == {
        "sku": "SKU-HAPPY",
        "available": 7,
        "reserved": 3,
        "committed": 0,
    }

    system.configure(inject_failure_rate="0")
    system.restart("inventory")

    def committed() -> bool:
        return system.stock("SKU-HAPPY")["committed"] == 3

    wait_for(committed, 90, "the re-sent CommitInventory to commit the stock")
    assert system.stock("SKU-HAPPY") == {
        "sku": "SKU-HAPPY",
        "available": 7,
        "reserved": 0,
        "committed": 3,
    }
    saga = system.wait_saga("order-heal-1", "COMPLETED")
    assert saga["end"]["command"] == "CommitInventory"
    assert saga["end"]["status"] == "CONFIRMED", saga
    result = system.verify()
    assert result.returncode == 0, result.stdout + result.stderr
