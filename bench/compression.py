"""Producer compression, chosen by measurement on the records a saga really writes.

All four services run as real workers (one each) on the local broker.

(A) Codecs on real records: a backlog of happy orders goes through the saga; then every
    record of every topic of the run (contract topics and changelogs, with their
    headers) is packed again, per partition and in offset order, into Kafka record
    batches of 8 and of 64 records with aiokafka's own batch builder, once per codec:
    bytes on the wire (ratio to uncompressed) and CPU µs per record to build
    (compress) and to read back (decompress), as producer and consumer pay them.
(B) End to end: the saga's drain rate (a backlog of happy orders, as bench/saga (A)) with
    the workers' producers on each codec, alternating, the workers restarted between;
    medians, and the ratio to no compression measured in the same run.

    .venv/bin/python -m bench.compression [--orders 600] [--runs 2]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections import defaultdict
from typing import Any

from aiokafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder

from bench.common import save
from bench.saga import deployment, drain_rate, run_orders
from streamapp.kafka.topics import describe_topics
from tests.integration.kafka_io import read_all
from tests.integration.system import SERVICES

#: producer_compression setting -> aiokafka's codec id in the batch attributes
CODECS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
BATCH_SIZES = (8, 64)


async def run_records(bootstrap: str, prefix: str) -> dict[tuple[str, int], list[Any]]:
    """Every record of the run's topics, by (topic, partition), in offset order."""
    names = [i.name for i in await describe_topics(bootstrap) if i.name.startswith(prefix)]
    found: dict[tuple[str, int], list[Any]] = defaultdict(list)
    for name in names:
        for record in await read_all(bootstrap, name):
            found[(name, record.partition)].append(record)
    for records in found.values():
        records.sort(key=lambda r: r.offset)
    return found


def pack(records: list[Any], codec: int) -> tuple[bytearray, float]:
    """One record batch as the producer builds it; the CPU seconds it took."""
    started = time.process_time()
    builder = DefaultRecordBatchBuilder(2, codec, 0, -1, -1, -1, 16 * 1024 * 1024)
    for n, r in enumerate(records):
        headers = [(k, v) for k, v in (r.headers or ())]
        builder.append(n, r.timestamp, r.key, r.value, headers)
    built = builder.build()
    return built, time.process_time() - started


def unpack(buffer: bytearray) -> float:
    started = time.process_time()
    for record in DefaultRecordBatch(bytes(buffer)):
        _ = record.value
    return time.process_time() - started


def codec_figures(by_partition: dict[tuple[str, int], list[Any]]) -> dict[str, Any]:
    records = sum(len(r) for r in by_partition.values())
    figures: dict[str, Any] = {"records": records}
    for size in BATCH_SIZES:
        batches = [
            rs[i : i + size] for rs in by_partition.values() for i in range(0, len(rs), size)
        ]
        plain_bytes = 0
        for name, codec in CODECS.items():
            total, build_s, read_s = 0, 0.0, 0.0
            for batch in batches:
                built, took = pack(batch, codec)
                total += len(built)
                build_s += took
                read_s += unpack(built)
            if name == "none":
                plain_bytes = total
            figures[f"{name}/{size}"] = {
                "bytes": total,
                "ratio": round(total / plain_bytes, 3),
                "build_us_per_record": round(1e6 * build_s / records, 2),
                "read_us_per_record": round(1e6 * read_s / records, 2),
            }
            print(
                f"(A) {name:>6}, batches of {size:>2}: {total:>10,} bytes "
                f"({total / plain_bytes:.2f}), build {1e6 * build_s / records:.1f} µs/record, "
                f"read {1e6 * read_s / records:.1f} µs/record"
            )
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=600, help="backlog size per run")
    parser.add_argument("--runs", type=int, default=2, help="(B) runs per codec")
    parser.add_argument("--codecs", default="none,lz4,zstd", help="(B) codecs to compare")
    args = parser.parse_args()
    codecs = args.codecs.split(",")
    with deployment() as system:
        bootstrap, run = system.bootstrap, system.env["STREAMAPP_APP_ID"]
        result: dict[str, Any] = {"run": run, "orders": args.orders}
        run_orders(system, 50, 20, seed=1)  # warm-up
        run_orders(system, args.orders, 100_000, seed=2)
        time.sleep(3)  # the end commands of the last sagas
        result["codecs"] = codec_figures(asyncio.run(run_records(bootstrap, run)))
        rates: dict[str, list[float]] = {c: [] for c in codecs}
        for n in range(args.runs):
            for codec in codecs:
                system.configure(producer_compression=codec)
                system.restart(*SERVICES)
                backlog = run_orders(system, args.orders, 100_000, seed=10 + n)
                rates[codec].append(drain_rate(backlog))
                print(f"(B) {codec}: {rates[codec][-1]:.1f} sagas/s")
        base = statistics.median(rates["none"]) if "none" in rates else None
        result["drain_per_s"] = {c: [round(r, 1) for r in rs] for c, rs in rates.items()}
        for codec, rs in rates.items():
            median = statistics.median(rs)
            ratio = f", {median / base:.2f}x none" if base else ""
            print(f"(B) {codec}: median {median:.1f} sagas/s{ratio}")
    print(f"saved {save(f'compression-{run}', result)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
