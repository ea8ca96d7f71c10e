"""A worker restores its tables from the changelogs in bulk (streamapp.kafka.bulk_restore).

The inventory worker's changelog is given stock records for 2,000 skus written straight
to Kafka, then tombstones for every fifth and new levels for every third (some deleted
and written again);
the worker then starts on an empty table directory. Its views must show the last value
of every key and no deleted one, whether the bulk path or faust's own recovery rebuilt
the table; the bulk path applies every record the changelog held (through the last of
each partition), and a restart on the kept directory reads nothing again (the persisted
offsets are right).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from tests.integration.kafka_io import read_topic, send_records
from tests.integration.support import http_json, wait_for
from tests.integration.system import System

pytestmark = pytest.mark.integration

SKUS = 2000
CHECKED = range(0, SKUS, 7)


def level(sku: str, available: int) -> bytes:
    """A settled stock entry as the participant stores it (participant.handler)."""
    value = {"sku": sku, "available": available, "reserved": 0, "committed": 0}
    return orjson.dumps({"value": value, "by": None, "before": None})


def expected(i: int) -> int | None:
    """The last value written for sku i (None: deleted)."""
    if i % 3 == 0:
        return i + 1_000_000
    return None if i % 5 == 0 else i


@pytest.fixture
def system(bootstrap: str, tmp_path: Path) -> Iterator[System]:
    deployment = System(bootstrap, tmp_path)
    deployment.start("inventory")
    yield deployment
    deployment.stop()


def changelog(system: System) -> str:
    return f"{system.env['STREAMAPP_APP_ID']}-inventory-inventory-state-changelog"


def restart(system: System, *, wipe: bool, bulk: bool) -> str:
    """Restart the inventory worker (on an empty table directory if `wipe`); its log
    from this start on."""
    worker = system.workers["inventory"]
    worker.stop()
    if wipe:
        shutil.rmtree(worker.table_dir, ignore_errors=True)
    worker.env["STREAMAPP_TABLE_BULK_RESTORE"] = "true" if bulk else "false"
    before = worker.log_path.stat().st_size
    worker.start()
    worker.wait_ready()
    return worker.log_path.read_bytes()[before:].decode(errors="replace")


def check_levels(system: System) -> None:
    for i in CHECKED:
        sku = f"SKU-B-{i:05d}"
        status, body = http_json(f"{system.url('inventory')}/inventory/{sku}")
        want = expected(i)
        if want is None:
            assert status == 404, (sku, status, body)
        else:
            assert status == 200 and body["available"] == want, (sku, status, body)


def test_restored_tables_hold_the_last_value_of_every_key(system: System) -> None:
    topic = changelog(system)
    # The seeded skus are in the changelog once the worker has applied its seed.
    wait_for(lambda: len(read_topic(system.bootstrap, topic)) > 0, 60, "the seeded stock")
    records: list[tuple[bytes, bytes | None]] = []
    records += [(f"e/SKU-B-{i:05d}".encode(), level(f"SKU-B-{i:05d}", i)) for i in range(SKUS)]
    records += [(f"e/SKU-B-{i:05d}".encode(), None) for i in range(0, SKUS, 5)]
    records += [
        (f"e/SKU-B-{i:05d}".encode(), level(f"SKU-B-{i:05d}", i + 1_000_000))
        for i in range(0, SKUS, 3)
    ]
    send_records(system.bootstrap, topic, records)  # type: ignore[arg-type]

    in_log = len(read_topic(system.bootstrap, topic))
    log = restart(system, wipe=True, bulk=True)
    rounds = [int(n) for n in re.findall(r"bulk-restored (\d+) changelog records", log)]
    assert rounds, log[-3000:]
    # every record, through the last of each partition (faust's recovery finds nothing
    # left), or a few more when the worker wrote meanwhile; summed over recovery rounds
    # (a rebalance during the restore starts another, which reads on from where it was)
    assert sum(rounds) >= in_log, (rounds, in_log)
    check_levels(system)
    assert system.stock("SKU-HAPPY")["available"] == 10  # the seeded stock came back too

    log = restart(system, wipe=False, bulk=True)
    assert "bulk-restored" not in log, "the persisted offsets were not at the end"
    check_levels(system)

    log = restart(system, wipe=True, bulk=False)  # faust's own recovery agrees
    assert "bulk-restored" not in log
    check_levels(system)
