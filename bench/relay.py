"""Baseline: the physical ceiling of a consume->produce relay on this machine.

In one run against the same broker and the same 200,000 records of ~300 bytes:
  (a) a raw aiokafka relay (consume a batch, produce it, await the acks, commit);
  (b) a bare Faust agent relay (bench/relay_app.py, a real `faust worker` subprocess);
  (c) the broker's own ceiling: Kafka's ProducerPerformance and ConsumerPerformance
      (kafka-producer-perf-test / kafka-consumer-perf-test, from the kafka-tools jar the
      local broker is fetched with) with the same record size, acks=all, linger 5 ms;
  (d) streamapp's relay pattern (bench/streamapp_relay_app.py): a StreamApp worker whose
      one agent is a ResilientConsumer sending each record on — what every streamapp
      agent pays per record before its own logic.
Rates (a), (b) and (d) come from the output records' timestamps (first to last relayed
record), so start-up and group joining are excluded the same way for all. Prints
records/s, b/a, d/a, and a/c and b/c against the slower of (c)'s produce and consume
rates.

    make bench            # or: .venv/bin/python -m bench.relay --records 200000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench.common import (
    OUT_DIR,
    ROOT,
    delete_topics,
    delete_topics_starting,
    kafka,
    output_rate,
    save,
    wait_for_records,
)
from streamapp.kafka.topics import TopicSpec, ensure_topics
from streamapp.local.broker import LocalBroker, find_java
from streamapp.settings import load_settings
from tests.integration.support import free_port


def payload(i: int, size: int) -> bytes:
    head = json.dumps({"orderId": f"order-{i % 5000}", "seq": i, "pad": ""}).encode()
    return head[:-2] + b"x" * max(size - len(head), 0) + b'"}'


async def fill(bootstrap: str, topic: str, records: int, size: int) -> float:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    started = time.perf_counter()
    try:
        batch = []
        for i in range(records):
            key = f"order-{i % 5000}".encode()
            batch.append(await producer.send(topic, payload(i, size), key=key))
            if len(batch) >= 5000:
                await asyncio.gather(*batch)
                batch.clear()
        await asyncio.gather(*batch)
    finally:
        await producer.stop()
    return records / (time.perf_counter() - started)


async def raw_relay(bootstrap: str, source: str, sink: str, records: int) -> float:
    """At-least-once like faust: produce a fetched batch, await its acks, then commit."""
    consumer = AIOKafkaConsumer(
        source,
        bootstrap_servers=bootstrap,
        group_id=f"{source}-raw",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_poll_records=2000,
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await consumer.start()
    await producer.start()
    relayed = 0
    started = None
    try:
        while relayed < records:
            batches = await consumer.getmany(timeout_ms=1000)
            if started is None and batches:
                started = time.perf_counter()
            futures = [
                await producer.send(sink, message.value, key=message.key)
                for messages in batches.values()
                for message in messages
            ]
            await asyncio.gather(*futures)
            relayed += len(futures)
            if futures:
                await consumer.commit()
    finally:
        await consumer.stop()
        await producer.stop()
    return records / (time.perf_counter() - (started or time.perf_counter()))


def faust_relay(
    loglevel: str,
    bootstrap: str,
    source: str,
    sink: str,
    partitions: int,
    records: int,
    timeout: float,
    log_path: Path,
) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "RELAY_APP_ID": f"{source}-faust",
        "RELAY_BOOTSTRAP": bootstrap,
        "RELAY_IN": source,
        "RELAY_OUT": sink,
        "RELAY_PARTITIONS": str(partitions),
        "RELAY_DATADIR": str(log_path.parent / "faust"),
    }
    faust = Path(sys.executable).parent / "faust"
    command = [str(faust), "-A", "bench.relay_app", "worker", "-l", loglevel, "--without-web"]
    run_relay_worker(command, env, log_path, bootstrap, sink, partitions, records, timeout)


def run_relay_worker(
    command: list[str],
    env: dict[str, str],
    log_path: Path,
    bootstrap: str,
    sink: str,
    partitions: int,
    records: int,
    timeout: float,
) -> None:
    """Run a relay worker (its output in `log_path`) until `sink` holds every record."""
    log_path.parent.mkdir(parents=True, exist_ok=True)  # bench/out is not in a fresh clone
    with open(log_path, "wb") as log:
        worker = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_records(
            bootstrap, sink, partitions, records, timeout, alive=lambda: worker.poll() is None
        )
    finally:
        worker.terminate()
        worker.wait(30)


def streamapp_relay(
    bootstrap: str,
    run: str,
    source: str,
    sink: str,
    partitions: int,
    records: int,
    timeout: float,
    log_path: Path,
) -> None:
    """Run bench/streamapp_relay_app.py as a worker until `sink` holds every record."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMAPP_")}
    env.update(
        PYTHONPATH=str(ROOT),
        RELAY_IN=source,
        RELAY_OUT=sink,
        STREAMAPP_BOOTSTRAP_SERVERS=bootstrap,
        STREAMAPP_APP_ID=f"{run}-streamapp",
        STREAMAPP_PARTITIONS=str(partitions),
        STREAMAPP_WEB_PORT=str(free_port()),
        STREAMAPP_DATA_DIR=str(log_path.parent / f"{run}-streamapp"),
        STREAMAPP_LOG_LEVEL="info",
    )
    command = [sys.executable, "-m", "faust", "-A", "bench.streamapp_relay_app", "worker"]
    run_relay_worker(
        [*command, "-l", "info"], env, log_path, bootstrap, sink, partitions, records, timeout
    )


def relay_in_turns(
    bootstrap: str,
    run: str,
    variants: Mapping[str, Callable[[], None]],
    records: int,
    partitions: int,
    runs: int,
) -> dict[str, list[float]]:
    """Relay one input (filled once) with streamapp's relay worker to a fresh output per
    variant and run, alternating which variant goes first; records/s by variant. Each
    variant prepares the worker before its run (e.g. RELAY_PATTERN, the source tree)."""
    rates: dict[str, list[float]] = {name: [] for name in variants}
    try:
        source = f"{run}.in"
        asyncio.run(ensure_topics(bootstrap, [TopicSpec(source, partitions, 1)]))
        asyncio.run(fill(bootstrap, source, records, 300))
        for n in range(runs):
            for name in list(variants) if n % 2 == 0 else list(variants)[::-1]:
                label = f"{run}-{name}-{n}"
                sink = f"{label}.out"
                asyncio.run(ensure_topics(bootstrap, [TopicSpec(sink, partitions, 1)]))
                variants[name]()
                streamapp_relay(
                    bootstrap,
                    label,
                    source,
                    sink,
                    partitions,
                    records,
                    600.0,
                    OUT_DIR / f"{label}.log",
                )
                rate = asyncio.run(output_rate(bootstrap, sink, records))
                rates[name].append(round(rate))
                print(f"run {n + 1} {name}: {rate:,.0f} records/s", flush=True)
    finally:
        asyncio.run(delete_topics_starting(bootstrap, run))
    return rates


def perf_tool(tool: str, *argv: str) -> str:
    """Run one of Kafka's perf tools (a small heap: the broker shares the box)."""
    settings = load_settings()
    libs = LocalBroker(settings).ensure_jars()
    command = [find_java(), "-Xmx256m", "-cp", f"{libs}/*", f"org.apache.kafka.tools.{tool}"]
    done = subprocess.run(
        [*command, *argv], capture_output=True, text=True, timeout=600, check=True
    )
    return done.stdout


def broker_ceiling(bootstrap: str, topic: str, records: int, size: int) -> dict[str, float]:
    """Records/s Kafka's own producer and consumer reach on this broker and box."""
    produced = perf_tool(
        "ProducerPerformance",
        *("--topic", topic, "--num-records", str(records), "--record-size", str(size)),
        *("--throughput", "-1", "--producer-props", f"bootstrap.servers={bootstrap}"),
        *("acks=all", "linger.ms=5"),
    )
    # last line: "200000 records sent, 123456.7 records/sec (35.32 MB/sec), ..."
    summary = [line for line in produced.splitlines() if "records sent" in line][-1]
    produce = float(summary.split(",")[1].split()[0])
    consumed = perf_tool(
        "ConsumerPerformance",
        *("--bootstrap-server", bootstrap, "--topic", topic, "--messages", str(records)),
        *("--timeout", "60000"),
    )
    # CSV: start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg,
    # nMsg.sec, ... (the rate includes the group join; Kafka's own tool, as it reports)
    header, row = [line for line in consumed.splitlines() if line.strip()][-2:]
    fields = dict(zip((h.strip() for h in header.split(",")), row.split(","), strict=False))
    consume = float(fields["nMsg.sec"])
    return {"produce_per_s": produce, "consume_per_s": consume}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--size", type=int, default=300, help="value size in bytes")
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument(
        "--no-perf-tools",
        action="store_true",
        help="skip (c), Kafka's perf tools (they need Java: e.g. under another Python "
        "in a chroot, against a broker started outside it)",
    )
    parser.add_argument(
        "--faust-loglevel",
        default="info",
        choices=["info", "warn"],
        help="faust worker -l: at warn (faust's default) faust sets the root logger to DEBUG "
        "to drive its terminal spinner, which costs throughput",
    )
    args = parser.parse_args()

    run = f"bench-relay-{uuid.uuid4().hex[:8]}"
    with kafka() as bootstrap:
        try:
            return measure(args, bootstrap, run)
        finally:  # the streamapp relay's retry topics and DLQ too
            asyncio.run(delete_topics_starting(bootstrap, run))


def measure(args: argparse.Namespace, bootstrap: str, run: str) -> int:
    source, raw_sink, faust_sink = f"{run}.in", f"{run}.out-raw", f"{run}.out-faust"
    streamapp_sink = f"{run}.out-streamapp"
    asyncio.run(
        ensure_topics(
            bootstrap,
            [
                TopicSpec(name, args.partitions, 1)
                for name in (source, raw_sink, faust_sink, streamapp_sink)
            ],
        )
    )
    fill_rate = asyncio.run(fill(bootstrap, source, args.records, args.size))
    print(
        f"filled {args.records} records of {len(payload(0, args.size))} B "
        f"at {fill_rate:,.0f} records/s"
    )

    wall_raw = asyncio.run(raw_relay(bootstrap, source, raw_sink, args.records))
    raw = asyncio.run(output_rate(bootstrap, raw_sink, args.records))
    print(f"(a) raw aiokafka relay : {raw:>10,.0f} records/s (wall {wall_raw:,.0f}/s)")

    faust_relay(
        args.faust_loglevel,
        bootstrap,
        source,
        faust_sink,
        args.partitions,
        args.records,
        args.timeout,
        OUT_DIR / f"{run}-faust.log",
    )
    faust = asyncio.run(output_rate(bootstrap, faust_sink, args.records))
    print(f"(b) bare Faust relay   : {faust:>10,.0f} records/s")
    print(f"ratio b/a              : {faust / raw:10.2f}")
    streamapp_relay(
        bootstrap,
        run,
        source,
        streamapp_sink,
        args.partitions,
        args.records,
        args.timeout,
        OUT_DIR / f"{run}-streamapp.log",
    )
    pattern = asyncio.run(output_rate(bootstrap, streamapp_sink, args.records))
    print(f"(d) streamapp relay    : {pattern:>10,.0f} records/s")
    print(f"ratio d/a              : {pattern / raw:10.2f}")
    ceiling: dict[str, float] = {}
    if not args.no_perf_tools:
        ceiling_topic = f"{run}.perf"
        asyncio.run(ensure_topics(bootstrap, [TopicSpec(ceiling_topic, args.partitions, 1)]))
        try:
            ceiling = broker_ceiling(bootstrap, ceiling_topic, args.records, args.size)
        finally:
            asyncio.run(delete_topics(bootstrap, [ceiling_topic]))
        print(
            f"(c) Kafka's perf tools : {ceiling['produce_per_s']:>10,.0f} produced/s, "
            f"{ceiling['consume_per_s']:,.0f} consumed/s"
        )
        broker = min(ceiling.values())
        print(f"ratio a/c, b/c         : {raw / broker:10.2f} {faust / broker:6.2f}")
    result = {
        "run": run,
        "records": args.records,
        "value_bytes": len(payload(0, args.size)),
        "partitions": args.partitions,
        "fill_per_s": round(fill_rate),
        "raw_per_s": round(raw),
        "faust_per_s": round(faust),
        "ratio_faust_to_raw": round(faust / raw, 3),
        "streamapp_per_s": round(pattern),
        "ratio_streamapp_to_raw": round(pattern / raw, 3),
        "broker_ceiling": {k: round(v) for k, v in ceiling.items()},
        "faust_loglevel": args.faust_loglevel,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }
    if ceiling:
        broker = min(ceiling.values())
        result["ratio_raw_to_broker"] = round(raw / broker, 3)
        result["ratio_faust_to_broker"] = round(faust / broker, 3)
    save(run, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
