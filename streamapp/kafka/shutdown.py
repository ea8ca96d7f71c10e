"""A faster clean shutdown: the worker leaves its consumer group ~2 s sooner.

faust stops a worker in this order: streams drain and offsets are committed, then the
tables stop, then the producer is flushed, and only then does the consumer stop and send
LeaveGroup, which is what lets the other workers take over its partitions at once. Each
RocksDB table's ``Store.stop`` runs a full ``gc.collect()`` (to free the databases'
handles); in an orders worker, with six tables, that was ~0.3 s each, 1.9 s of the 2.3 s
between SIGTERM and LeaveGroup (bench/failover, docs/scaling.md "Failover").

The fix: ``Store.stop`` drops its databases without collecting. Every database handle
is released when its last reference goes (RocksDB closes it then); the process exits
right after, and RocksDB is crash-safe anyway (a kill -9 skips all of this). Revoking
partitions during a rebalance still collects: a partition that comes back to the same
process must find its database lock released.
"""

from __future__ import annotations

from typing import Any

from faust.stores.rocksdb import Store

_PATCHED = "_streamapp_stop_without_gc"


def apply() -> None:
    """Patch faust's RocksDB store once per process (idempotent)."""
    if getattr(Store.stop, _PATCHED, False):
        return
    if "_dbs" not in Store.__annotations__:  # faust changed: re-check before porting
        raise RuntimeError(f"faust's rocksdb Store has no _dbs: review {__name__}")

    async def stop(self: Any) -> None:
        self.logger.info("Closing rocksdb on stop")
        self._dbs.clear()

    setattr(stop, _PATCHED, True)
    Store.stop = stop  # type: ignore[method-assign]
