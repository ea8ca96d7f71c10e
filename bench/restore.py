"""Changelog restore: how fast a worker rebuilds a table of 1,000,000 keys from Kafka.

A real inventory worker (streamapp's participant service, RocksDB via rocksdict) starts
with an empty table directory while its ``inventory-state`` changelog holds N records
(distinct keys, values shaped like the service's own stock records, 8 partitions); faust
restores every partition before the worker is ready. The rate is taken from the worker's
own ``streamapp_recovery_remaining_records`` gauge, polled every 100 ms: records restored
between the first poll that sees the restore under way and the first that sees none
left, over that time (start-up and the group join excluded, as in bench/relay).

The ceiling, same run, same topic: a plain aiokafka consumer reading the changelog from
the beginning (no store). Medians of --runs restores with min and max, then
--faust-runs restores with ``table_bulk_restore`` off (faust's recovery alone).

    .venv/bin/python -m bench.restore [--keys 1000000] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bench.common import delete_topics_starting, kafka, save
from bench.saga import rss_mb
from tests.integration.support import http_get
from tests.integration.system import System

TABLE = "inventory-state"
PARTITIONS = 8
GAUGE = "streamapp_recovery_remaining_records"


def changelog(system: System) -> str:
    """faust's changelog topic name for the table: ``<app id>-<table>-changelog``, where a
    participant's app id is ``<app id>-<service>``."""
    return f"{system.env['STREAMAPP_APP_ID']}-inventory-{TABLE}-changelog"


async def sample_value(bootstrap: str, topic: str) -> bytes:
    """A value the inventory worker itself wrote (a seeded sku's stock record)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for record in records:
                    if record.value:
                        return bytes(record.value)
        raise RuntimeError(f"{topic} holds no record to copy")
    finally:
        await consumer.stop()


async def fill(bootstrap: str, topic: str, keys: int, value: bytes) -> float:
    """Write `keys` distinct keys to the changelog (default partitioner, as faust's);
    records/s of the fill."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks=1, linger_ms=20, max_batch_size=512 * 1024
    )
    await producer.start()
    started = time.monotonic()
    try:
        pending = []
        for i in range(keys):
            pending.append(await producer.send(topic, value, key=b"SKU-R-%07d" % i))
            if len(pending) >= 20_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return keys / (time.monotonic() - started)


async def raw_read(bootstrap: str, topic: str) -> tuple[int, float]:
    """The ceiling: read every record of the changelog with plain aiokafka; (records,
    records/s from the first fetched batch to the last)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, max_partition_fetch_bytes=4 << 20
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        total, read, first = sum(ends.values()), 0, None
        deadline = time.monotonic() + 600
        while read < total:
            if time.monotonic() > deadline:
                raise RuntimeError(f"read {read} of {total} records of {topic} in 600 s")
            batch = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            if first is None and batch:
                first = time.monotonic()
            read += sum(len(records) for records in batch.values())
        assert first is not None
        return read, read / (time.monotonic() - first)
    finally:
        await consumer.stop()


def remaining(url: str) -> int | None:
    """Records the worker still has to restore for the table (None: not known yet)."""
    try:
        status, body = http_get(f"{url}/metrics", timeout=2.0)
    except OSError:
        return None
    if status != 200:
        return None
    for line in body.decode().splitlines():
        if line.startswith(GAUGE) and f'table="{TABLE}"' in line:
            return int(float(line.rsplit(" ", 1)[1]))
    return None


def bulk_line(log: str) -> tuple[int, float] | None:
    """(records, seconds) of the worker's "bulk-restored" log line, if any."""
    found = re.search(r"bulk-restored (\d+) changelog records of \d+ partitions in ([\d.]+) s", log)
    return (int(found.group(1)), float(found.group(2))) if found else None


def timed_restore(system: System, keys: int, bulk: bool = True) -> dict[str, Any]:
    """Restart the inventory worker on an empty table directory (with streamapp's bulk
    restore, or faust's recovery alone); the restore rate seen through its gauge, or
    (a restore too quick for the 100 ms polls) from the bulk restore's log line."""
    worker = system.workers["inventory"]
    worker.stop()
    shutil.rmtree(worker.table_dir, ignore_errors=True)
    worker.env["STREAMAPP_TABLE_BULK_RESTORE"] = "true" if bulk else "false"
    logged_before = worker.log_path.stat().st_size
    worker.start()
    url = system.url("inventory")
    first: tuple[float, int] | None = None
    timed: tuple[int, float] | None = None
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        left = remaining(url)
        now = time.monotonic()
        if left is not None and left > 0 and first is None:
            first = (now, left)
        if left == 0 and first is not None and timed is None:
            timed = (first[1], now - first[0])
        if worker.proc is not None and worker.proc.poll() is not None:
            raise RuntimeError(f"the inventory worker exited:\n{worker.log()}")
        with contextlib.suppress(OSError):
            if http_get(f"{url}/ready", timeout=2.0)[0] == 200:
                break
        time.sleep(0.1)
    else:
        raise RuntimeError(f"no restore of {keys} keys within 600 s:\n{worker.log()}")
    how = "gauge"
    if timed is None and first is not None:  # ready before a poll saw 0 left
        timed, how = (first[1], time.monotonic() - first[0]), "ready"
    if timed is None:
        log = worker.log_path.read_bytes()[logged_before:].decode(errors="replace")
        timed, how = bulk_line(log), "log"
    assert worker.proc is not None
    figures: dict[str, Any] = {"rss_mb": rss_mb(worker.proc.pid), "timed_by": how}
    if timed is None or timed[1] <= 0:  # too quick to time: a smoke run's size
        return {**figures, "restored": None, "seconds": None, "per_s": None}
    restored, seconds = timed
    return {
        **figures,
        "restored": restored,
        "seconds": round(seconds, 2),
        "per_s": round(restored / seconds),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--faust-runs", type=int, default=1, help="restores by faust's recovery alone (slow)"
    )
    args = parser.parse_args()
    with kafka() as bootstrap, tempfile.TemporaryDirectory() as tmp:
        system = System(bootstrap, Path(tmp), partitions=str(PARTITIONS))  # info: the bulk line
        run = system.env["STREAMAPP_APP_ID"]
        try:
            system.start("inventory")  # declares the changelog, writes the seeded skus
            topic = changelog(system)
            value = asyncio.run(sample_value(bootstrap, topic))
            fill_rate = asyncio.run(fill(bootstrap, topic, args.keys, value))
            print(f"filled {topic}: {args.keys} keys, {len(value)} B values, {fill_rate:.0f}/s")
            ceilings, restores = [], []
            for n in range(args.runs):
                read, rate = asyncio.run(raw_read(bootstrap, topic))
                ceilings.append(round(rate))
                print(f"run {n + 1}: raw aiokafka read {read} records at {rate:.0f}/s")
                restore = timed_restore(system, args.keys)
                restores.append(restore)
                print(
                    f"run {n + 1}: worker restored {restore['restored']} records in "
                    f"{restore['seconds']} s = {restore['per_s']}/s"
                )
            faust = []
            for n in range(args.faust_runs):
                restore = timed_restore(system, args.keys, bulk=False)
                faust.append(restore)
                print(
                    f"faust run {n + 1}: worker restored {restore['restored']} records in "
                    f"{restore['seconds']} s = {restore['per_s']}/s (table_bulk_restore off)"
                )
        finally:
            system.stop()
            asyncio.run(delete_topics_starting(bootstrap, run))
    rates = [r["per_s"] for r in restores if r["per_s"] is not None] or [0]
    median, ceiling = statistics.median(rates), statistics.median(ceilings)
    print(
        f"restore: median {median:.0f}/s (min {min(rates)}, max {max(rates)}); raw read median "
        f"{ceiling:.0f}/s (min {min(ceilings)}, max {max(ceilings)}); ratio {median / ceiling:.2f}"
    )
    result = {
        "run": run,
        "keys": args.keys,
        "value_bytes": len(value),
        "restores": restores,
        "restore_per_s": {"median": median, "min": min(rates), "max": max(rates)},
        "raw_read_per_s": {"median": ceiling, "min": min(ceilings), "max": max(ceilings)},
        "ratio": round(median / ceiling, 3),
        "faust_restores": faust,
    }
    print(f"saved {save(run, result)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
