"""streamapp.kafka.shutdown: a stopping RocksDB store does not run gc.collect()."""

from __future__ import annotations

import asyncio
import gc
import logging
from typing import Any

import pytest
from faust.stores.rocksdb import Store

from streamapp.kafka import shutdown


def test_store_stop_drops_its_databases_without_a_full_collection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shutdown.apply()
    shutdown.apply()  # idempotent: imported by every worker once, by tests again
    collections: list[Any] = []
    monkeypatch.setattr(gc, "collect", lambda *a: collections.append(a) or 0)
    store: Any = Store.__new__(Store)  # no app, no directory: only what stop() touches
    store._dbs = {0: object(), 3: object()}
    monkeypatch.setattr(Store, "logger", logging.getLogger("test"), raising=False)
    asyncio.run(store.stop())
    assert store._dbs == {}
    assert collections == []
