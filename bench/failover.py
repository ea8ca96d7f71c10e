"""Failover: how long the partitions of a dead orders worker stay unanswered.

Two orders workers share 8 partitions on the local broker (the participants do not run:
a saga waits for its first answer, with a step timeout of an hour, so only the orders
path is measured). CreateOrder commands go to every partition round-robin at --rate/s
(order ids chosen so that the key hashes to the partition); their replies on
orders.replies carry the time the worker produced them. Then one worker is stopped —
``kill -9`` or SIGTERM — and for each of its partitions the time from the signal to the
end of the longest silence of that partition's replies after it is taken ("answers
again"); a run's figure is the max over the dead worker's partitions (the survivor's own
partitions are reported too: they pause during the rebalance). The dead worker is then
restarted on its port and table directory, the group settles, and the next run starts.
Median (min-max) of --runs runs per mode, for each --configs group timing:

    old   session 10 s, heartbeat 3 s (the defaults before issue 15)
    new   the current defaults with the test harness's 3 s session (the embedded-broker
          default; tests/integration/system.py)
    static  the current defaults + consumer_static_membership
    hb1   the current defaults with a 1 s heartbeat (a live worker hears of a rebalance
          sooner)
    s6    session 6 s, heartbeat 1 s (the defaults before the assignment-heartbeat fix)

The survivor's log gives where the time goes (detected, joined, assigned, recovered).

    .venv/bin/python -m bench.failover [--runs 5] [--configs old,new] [--modes kill,term]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import itertools
import re
import shutil
import statistics
import tempfile
import threading
import time
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.partitioner import murmur2

from bench.common import delete_topics_starting, kafka, save
from streamapp import topics
from streamapp.messages import iso_utc, new_id
from streamapp.seeds import load_seeds
from streamapp.settings import Settings, load_settings
from streamapp.tools.loadgen import parse_mix, plan_orders
from tests.integration.support import Worker, settle
from tests.integration.system import System

PARTITIONS = 8
CONFIGS: dict[str, dict[str, str]] = {
    "old": {"consumer_session_timeout_ms": "10000", "consumer_heartbeat_interval_ms": "3000"},
    "new": {},
    "static": {"consumer_static_membership": "true"},
    "hb1": {"consumer_heartbeat_interval_ms": "1000"},
    "s6": {"consumer_session_timeout_ms": "6000", "consumer_heartbeat_interval_ms": "1000"},
}


def survivor_phases(group: str) -> dict[str, re.Pattern[str]]:
    """Survivor log lines that mark the failover's phases of the app's consumer group
    (not the retry relay's group, `<group>-retry-relay`, which rebalances too)."""
    g = re.escape(group)
    return {
        "detected": re.compile(rf"Heartbeat failed for group {g} |\(Re-\)joining group {g}\s*$"),
        "joined": re.compile(rf"Joined group '{g}'"),
        "assigned": re.compile(r"Executing _on_partitions_assigned"),
        "recovered": re.compile(r"\[\^---Recovery\]: Worker ready"),
    }


#: The stopping worker's (SIGTERM): when it began to stop and when it left the group.
VICTIM_PHASES = {
    "stopping": re.compile(r"\[\^Worker\]: Stopping"),
    "consumer_stopping": re.compile(r"\[\^--Consumer\]: Stopping"),
    "left": re.compile(r"LeaveGroup request succeeded"),
}
_LOG_TIME = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\]")


def partition_of(key: str, partitions: int) -> int:
    """The partition the default (Java-compatible) partitioner gives `key`."""
    return int(murmur2(key.encode()) & 0x7FFFFFFF) % partitions


def keys_per_partition(run: str, partitions: int, per_partition: int) -> list[list[str]]:
    """Order ids grouped by the partition their key hashes to."""
    keys: list[list[str]] = [[] for _ in range(partitions)]
    n = 0
    while min(len(k) for k in keys) < per_partition:
        key = f"fo-{run}-{n:07d}"
        keys[partition_of(key, partitions)].append(key)
        n += 1
    return keys


def answered_again(kill_ms: int, replies: list[int], until_ms: int) -> int:
    """ms from the kill to the end of the longest silence of one partition's replies in
    [kill, until]: with SIGTERM the stopping worker may still answer for a moment
    before the partition goes silent, so the first reply after the signal is not it."""
    times = [kill_ms, *sorted(r for r in replies if kill_ms < r <= until_ms)]
    if len(times) == 1:
        return until_ms - kill_ms
    _, end = max(itertools.pairwise(times), key=lambda gap: gap[1] - gap[0])
    return end - kill_ms


@dataclasses.dataclass
class Load:
    """CreateOrder commands round-robin over the partitions at `rate`/s, and their replies,
    in a background thread (its own event loop)."""

    settings: Settings
    rate: float
    run: str
    sent: dict[str, tuple[int, int]] = dataclasses.field(default_factory=dict)  # cmd -> p, ms
    replied: dict[str, int] = dataclasses.field(default_factory=dict)  # cmd -> reply ms
    _stop: threading.Event = dataclasses.field(default_factory=threading.Event)
    _ready: threading.Event = dataclasses.field(default_factory=threading.Event)
    paused: threading.Event = dataclasses.field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)
        self._thread.start()
        if not self._ready.wait(60):
            raise SystemExit("load generator did not start")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(60)

    def replies_of(self, partition: int) -> list[int]:
        return [
            self.replied[c]
            for c, (p, _) in self.sent.copy().items()
            if p == partition and c in self.replied
        ]

    def unanswered(self, sent_before_ms: int) -> list[str]:
        return [
            c
            for c, (_, ms) in self.sent.copy().items()
            if ms < sent_before_ms and c not in self.replied
        ]

    async def _main(self) -> None:
        settings = self.settings
        seeds = load_seeds(settings.seeds_file)
        plan = plan_orders(2000, parse_mix(""), seeds, 7, self.run)  # happy order bodies
        keys = keys_per_partition(self.run, PARTITIONS, 8000)  # > 30 min at 32/s
        commands = settings.topic(topics.ORDERS_COMMANDS.name)
        replies = settings.topic(topics.ORDERS_REPLIES.name)
        consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap, enable_auto_commit=False)
        await consumer.start()
        consumer.assign([TopicPartition(replies, p) for p in range(PARTITIONS)])
        await consumer.seek_to_end()
        producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap, acks="all", linger_ms=0)
        await producer.start()
        reader = asyncio.create_task(self._read(consumer))
        self._ready.set()
        loop = asyncio.get_running_loop()
        start, n, total = loop.time(), 0, 0
        try:
            while not self._stop.is_set():
                wait = start + n / self.rate - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                if self.paused.is_set():
                    start, n = loop.time(), 0
                    while self.paused.is_set() and not self._stop.is_set():  # noqa: ASYNC110 (a threading.Event)
                        await asyncio.sleep(0.1)
                    continue
                partition = total % PARTITIONS
                order_id = keys[partition][total // PARTITIONS]
                body = plan[total % len(plan)].create
                command = dataclasses.replace(  # correlation id "": the command's own id
                    body,
                    command_id=new_id(),
                    aggregate_id=order_id,
                    correlation_id="",
                    timestamp=iso_utc(),
                )
                self.sent[command.command_id] = (partition, int(time.time() * 1000))
                await producer.send(
                    commands, command.to_json(), key=order_id.encode(), partition=partition
                )
                n += 1
                total += 1
        finally:
            await producer.stop()
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            await consumer.stop()

    async def _read(self, consumer: AIOKafkaConsumer) -> None:
        import orjson

        while True:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                for record in records:
                    if record.value is not None:
                        reply = orjson.loads(record.value)
                        self.replied.setdefault(reply["commandId"], record.timestamp)


def owned_partitions(worker: Worker, topic: str) -> list[int]:
    """The worker's partitions of `topic`, from its consumer-lag metric."""
    with urllib.request.urlopen(f"{worker.url}/metrics", timeout=10) as response:
        text = response.read().decode()
    pattern = re.compile(
        r'^streamapp_consumer_lag\{(?=[^}]*topic="'
        + re.escape(topic)
        + r'")[^}]*partition="(\d+)"',
        re.MULTILINE,
    )
    return sorted({int(p) for p in pattern.findall(text)})


def wait_answered(load: Load, timeout: float) -> None:
    """Until every command sent so far has its reply (or `timeout` s passed)."""
    deadline = time.monotonic() + timeout
    while load.unanswered(int(time.time() * 1000)) and time.monotonic() < deadline:
        time.sleep(0.2)


def log_phases(
    log: Path, kill_ms: int, until_ms: int, phases: dict[str, re.Pattern[str]]
) -> dict[str, int]:
    """ms after the kill at which a worker logged each phase (first match)."""
    found: dict[str, int] = {}
    for line in log.read_text(errors="replace").splitlines():
        match = _LOG_TIME.match(line)
        if not match:
            continue
        at = int(datetime.strptime(match[1], "%Y-%m-%d %H:%M:%S,%f").timestamp() * 1000)
        if not kill_ms <= at <= until_ms:
            continue
        for phase, pattern in phases.items():
            if phase not in found and pattern.search(line):
                found[phase] = at - kill_ms
    return found


def failover_run(
    system: System, load: Load, mode: str, victim: str, survivor: str
) -> dict[str, Any]:
    """Stop `victim` (kill -9 or SIGTERM) and time its partitions' return; restart it."""
    topic = system.topic(topics.ORDERS_COMMANDS.name)
    dead = owned_partitions(system.workers[victim], topic)
    if not dead:
        raise SystemExit(f"{victim} owns no partition of {topic}")
    worker = system.workers[victim]
    assert worker.proc is not None
    # kill9: SIGKILL; stop: SIGTERM (faust's clean shutdown, as systemd stops a unit),
    # both waiting for the exit in a thread while the replies are timed.
    stopping = threading.Thread(
        target=worker.kill9 if mode == "kill" else lambda: worker.stop(60), daemon=True
    )
    kill_ms = int(time.time() * 1000)
    stopping.start()
    deadline = time.monotonic() + 90
    while True:  # every partition answers commands sent 1 s ago (or 90 s passed)
        time.sleep(0.5)
        now_ms = int(time.time() * 1000)
        if not load.unanswered(now_ms - 1000) and now_ms - kill_ms > 3000:
            break
        if time.monotonic() > deadline:
            break
    until_ms = int(time.time() * 1000)
    stopping.join(60)
    per = {p: answered_again(kill_ms, load.replies_of(p), until_ms) for p in range(PARTITIONS)}
    result = {
        "mode": mode,
        "dead_partitions": dead,
        "per_partition_ms": per,
        "max_dead_ms": max(per[p] for p in dead),
        "max_survivor_ms": max((per[p] for p in range(PARTITIONS) if p not in dead), default=0),
        "unanswered_after_90s": len(load.unanswered(until_ms - 1000)),
        "survivor_phases_ms": log_phases(
            system.workers[survivor].log_path,
            kill_ms,
            until_ms,
            survivor_phases(system.env["STREAMAPP_APP_ID"]),
        ),
        "victim_phases_ms": log_phases(worker.log_path, kill_ms, until_ms, VICTIM_PHASES),
    }
    # Restart the victim (same port and table directory) with no commands flowing: a
    # worker joining while records flow can stall the survivor's rebalance (see the
    # "Failover" section of docs/scaling.md); the join is not what is measured here.
    load.paused.set()
    wait_answered(load, 30)
    system.workers[victim].start()
    settle(system.workers[victim], system.workers[survivor])
    time.sleep(3)  # the standbys catch up
    load.paused.clear()
    time.sleep(5)  # the load is steady again
    return result


def summary(values: list[int]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def measure(
    bootstrap: str, config: str, modes: list[str], runs: int, rate: float, keep: bool
) -> dict[str, Any]:
    tmp = tempfile.mkdtemp(prefix="failover-")  # kept (logs) when a run fails
    system = System(
        bootstrap,
        Path(tmp),
        partitions=str(PARTITIONS),
        saga_step_timeout_ms="3600000",  # no participants run: no step may time out
        **CONFIGS[config],
    )
    run = system.env["STREAMAPP_APP_ID"]
    load = Load(load_settings(environ=system.env), rate, run)
    found: dict[str, Any] = {"config": config, "settings": CONFIGS[config], "runs": []}
    try:
        system.start("orders")
        system.add_worker("orders", "orders-2")
        settle(system.workers["orders"], system.workers["orders-2"])
        load.start()
        time.sleep(5)
        for n in range(runs):
            for mode in modes:
                # Alternate the victim: each worker is killed as often, as leader or not.
                victim, survivor = ("orders-2", "orders") if n % 2 == 0 else ("orders", "orders-2")
                result = failover_run(system, load, mode, victim, survivor)
                found["runs"].append(result)
                print(
                    f"[{config}] run {n + 1} {mode:4}: dead partitions "
                    f"{result['dead_partitions']} "
                    f"answered after {result['max_dead_ms']} ms (survivor's "
                    f"{result['max_survivor_ms']} ms), phases {result['survivor_phases_ms']} "
                    f"{result['victim_phases_ms']}",
                    flush=True,
                )
        load.paused.set()
        wait_answered(load, 60)
        found["unanswered_at_end"] = len(load.unanswered(int(time.time() * 1000)))
        found["commands"] = len(load.sent)
    except BaseException:
        print(f"{system.logs()}\nworker logs kept in {tmp}")
        raise
    finally:
        load.stop()
        system.stop()
        asyncio.run(delete_topics_starting(bootstrap, run))
    if not keep:
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        print(f"worker logs kept in {tmp}")
    for mode in modes:
        runs_of = [r for r in found["runs"] if r["mode"] == mode]
        found[mode] = {
            "dead_ms": summary([r["max_dead_ms"] for r in runs_of]),
            "survivor_ms": summary([r["max_survivor_ms"] for r in runs_of]),
        }
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rate", type=float, default=32.0, help="CreateOrder commands/s")
    parser.add_argument("--configs", default="old,new", help=f"of {', '.join(CONFIGS)}")
    parser.add_argument("--modes", default="kill,term", help="kill (-9) and/or term (SIGTERM)")
    parser.add_argument("--keep-logs", action="store_true", help="keep the worker logs")
    args = parser.parse_args()
    configs, modes = args.configs.split(","), args.modes.split(",")
    result: dict[str, Any] = {"rate": args.rate, "runs": args.runs, "configs": {}}
    with kafka() as bootstrap:
        for config in configs:
            result["configs"][config] = measure(
                bootstrap, config, modes, args.runs, args.rate, args.keep_logs
            )
    for config, found in result["configs"].items():
        for mode in modes:
            dead, surv = found[mode]["dead_ms"], found[mode]["survivor_ms"]
            print(
                f"{config:6} {mode:4}: dead worker's partitions {dead['median'] / 1000:.1f} s "
                f"({dead['min'] / 1000:.1f}-{dead['max'] / 1000:.1f}), survivor's "
                f"{surv['median'] / 1000:.1f} s; unanswered at end {found['unanswered_at_end']}"
            )
    print(f"saved {save(f'failover-{int(time.time())}', result)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
