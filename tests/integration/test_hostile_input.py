"""Hostile input against a whole deployment: the HTTP surface and every consumed topic.

The four services run as real workers. What a user would check from outside: where
they listen, what an unknown route or a wrong method answers, what schemathesis finds
when it fuzzes each service's own OpenAPI document, and what random bytes, random JSON
and records near the size limit do on every topic a service consumes. Afterwards every
worker is alive and ready and an order still completes: nothing crashed or stalled.
"""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import MessageSizeTooLargeError

from streamapp.resilience.headers import header
from streamapp.settings import SERVICES
from streamapp.topics import MAX_RECORD_BYTES
from tests.integration.kafka_io import read_topic
from tests.integration.support import (
    BIN,
    Worker,
    free_port,
    fresh_app_env,
    http_get,
    http_post_json,
    kill_all,
    wait_for,
)
from tests.integration.system import System

pytestmark = pytest.mark.integration

SEED = 20261202

#: Every topic a service's agents consume (contract names, before the prefix).
CONSUMED = {
    "orders": [
        "orders.commands",
        "orders.events",
        "inventory.events",
        "payments.events",
        "shipping.events",
        "sagas.timeouts",
        "streamapp.probes",
    ],
    "inventory": ["inventory.commands"],
    "payments": ["payments.commands"],
    "shipping": ["shipping.commands"],
}


#: The schema registry's routes (fuzzed on an orders worker of their own, see FUZZING).
REGISTRY = "^/(subjects|schemas|config|compatibility)"


@dataclass
class Deployment:
    """The four services, and two orders workers of apps of their own."""

    system: System
    registry: Worker  #: its schema registry is the fuzzer's to change
    bound: Worker  #: web_bind 0.0.0.0


@pytest.fixture(scope="module")
def deployment(bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    root = tmp_path_factory.mktemp("hostile")
    system = System(bootstrap, root)

    def own_app(name: str, **env: str) -> Worker:
        base = fresh_app_env(bootstrap, root / name)
        return Worker({**base, "STREAMAPP_WEB_PORT": str(free_port()), **env}, root / f"{name}.log")

    registry = own_app("registry")
    bound = own_app("bound", STREAMAPP_WEB_BIND="0.0.0.0")
    try:  # all six start at once: quicker than one after the other
        system.start(wait=False)
        registry.start()
        bound.start()
        for worker in (*system.workers.values(), registry, bound):
            worker.wait_ready()
        yield Deployment(system, registry, bound)
    finally:
        kill_all([*system.workers.values(), registry, bound])


@pytest.fixture(scope="module")
def system(deployment: Deployment) -> System:
    return deployment.system


def listening_addresses(port: int) -> set[str]:
    """The local addresses of the sockets listening on a TCP port (from /proc/net)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, hex_port = fields[1].rsplit(":", 1)
            if int(hex_port, 16) == port and fields[3] == "0A":  # 0A: LISTEN
                found.add(_address(address))
    return found


def _address(hex_address: str) -> str:
    if len(hex_address) == 8:  # IPv4, little-endian
        return ".".join(str(b) for b in reversed(bytes.fromhex(hex_address)))
    return "::" if int(hex_address, 16) == 0 else hex_address


def test_every_worker_listens_on_loopback_only(system: System) -> None:
    for service in SERVICES:
        assert listening_addresses(system.ports[service]) == {"127.0.0.1"}, service


def test_web_bind_opens_the_server_to_every_interface(deployment: Deployment) -> None:
    assert deployment.bound.env["STREAMAPP_WEB_BIND"] == "0.0.0.0"
    deployment.bound.wait_ready()
    assert listening_addresses(deployment.bound.port) == {"0.0.0.0"}


def request(method: str, url: str, body: bytes | None = None) -> tuple[int, str, Any]:
    req = urllib.request.Request(url, data=body, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read()


@pytest.mark.parametrize("service", SERVICES)
def test_errors_are_json_on_every_service(system: System, service: str) -> None:
    base = system.url(service)
    too_big = b"x" * (1024 * 1024 + 1)
    for method, path, body, status, error_type in [
        ("GET", "/no/such/route", None, 404, "NotFound"),
        ("DELETE", "/health", None, 405, "MethodNotAllowed"),
        ("POST", "/ready", b"{}", 405, "MethodNotAllowed"),
        ("POST", "/orders" if service == "orders" else "/health", too_big, 413, None),
    ]:
        got, content_type, raw = request(method, base + path, body)
        if status == 413 and service != "orders":
            status, error_type = 405, "MethodNotAllowed"  # no POST route: refused first
        assert (got, content_type) == (status, "application/json"), (service, method, path)
        error = orjson.loads(raw)["error"]
        assert set(error) >= {"type", "message"}
        assert error_type is None or error["type"] == error_type
        if status == 413:
            assert error["type"] == "PayloadTooLarge"


#: Fuzzing examples per operation. Schemathesis' coverage phase (every documented
#: status, each part of a request missing, each boundary and wrong type of its schema)
#: does not depend on it. Measured with the seed below: 20 per orders operation and 12
#: per participant operation give every (operation, method, status, error type) that 40
#: and 25 gave, in half the time; the registry's stateful runs (register, look up,
#: delete versions) need their 40 for all of theirs.
MAX_EXAMPLES = {"orders": "20", "registry": "40", "participant": "12"}


class Fuzz:
    """One `schemathesis run` in the background, its output in files of its own."""

    def __init__(self, url: str, checks: list[str], max_examples: str, root: Path) -> None:
        root.mkdir(parents=True)
        self.stdout, self.stderr = root / "stdout.txt", root / "stderr.txt"
        with open(self.stdout, "wb") as out, open(self.stderr, "wb") as err:
            self.proc = subprocess.Popen(
                [
                    str(BIN / "schemathesis"),
                    "run",
                    f"{url}/openapi.json",
                    *checks,
                    *("--max-examples", max_examples),
                    *("--workers", "1"),
                    *("--seed", str(SEED)),
                    "--no-color",
                ],
                cwd=root,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
            )

    def result(self, timeout: float = 600) -> tuple[int, str, str]:
        """(exit code, stdout, stderr) once it has ended."""
        returncode = self.proc.wait(timeout)
        return returncode, self.stdout.read_text(), self.stderr.read_text()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture(scope="module")
def fuzzing(
    deployment: Deployment, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, list[Fuzz]]]:
    """Every service's fuzzing passes, all started at once (each against its own worker).

    Every check schemathesis has, on the service's own document. The schema registry's
    bodies carry a schema as JSON text: no OpenAPI schema can say which texts are valid
    JSON Schemas, so "valid data accepted" cannot hold there (an invalid one is refused
    42201, as documented). Every other check runs on those routes, against an orders
    worker of its own (its own _schemas): the fuzzer registers, deletes and deprecates
    versions of the real subjects, which would rightly make the deployment under test
    refuse its writes afterwards."""
    root = tmp_path_factory.mktemp("fuzz")
    system = deployment.system
    every = ["--checks", "all"]
    runs = {
        "orders": [
            Fuzz(
                system.url("orders"),
                [*every, "--exclude-path-regex", REGISTRY],
                MAX_EXAMPLES["orders"],
                root / "orders",
            ),
            Fuzz(
                deployment.registry.url,
                [
                    *every,
                    *("--exclude-checks", "positive_data_acceptance"),
                    *("--include-path-regex", REGISTRY),
                ],
                MAX_EXAMPLES["registry"],
                root / "registry",
            ),
        ],
        **{
            service: [Fuzz(system.url(service), every, MAX_EXAMPLES["participant"], root / service)]
            for service in SERVICES
            if service != "orders"
        },
    }
    try:
        yield runs
    finally:
        for fuzz in (f for service_runs in runs.values() for f in service_runs):
            fuzz.kill()


@pytest.mark.parametrize("service", SERVICES)
def test_schemathesis_finds_nothing_and_the_worker_stays_ready(
    system: System, fuzzing: dict[str, list[Fuzz]], service: str
) -> None:
    """Every check schemathesis has, on the service's own document: no 5xx, every
    status, content type, header and body as documented, invalid input refused, valid
    input accepted, unsupported methods answered 405 (see `fuzzing`)."""
    base = system.url(service)
    status, raw = http_get(f"{base}/openapi.json")
    assert status == 200 and orjson.loads(raw)["openapi"] == "3.1.0"
    for fuzz in fuzzing[service]:
        returncode, stdout, stderr = fuzz.result()
        assert returncode == 0, stdout[-6000:] + stderr[-2000:]
        assert " passed" in stdout and "failures" not in stdout.splitlines()[-1]
    system.workers[service].wait_ready(timeout=30)


def _random_json(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(7 if depth < 4 else 4)
    if kind == 0:
        return rng.choice([None, True, False])
    if kind == 1:
        return rng.choice([0, -1, 2**70, 1.5, float(rng.randrange(10**6))])
    if kind in (2, 3):
        return "".join(chr(rng.randrange(1, 0x2FFF)) for _ in range(rng.randrange(12)))
    if kind == 4:
        return [_random_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    keys = ["commandId", "commandType", "eventType", "eventId", "data", "tickId", "x"]
    return {rng.choice(keys): _random_json(rng, depth + 1) for _ in range(rng.randrange(5))}


def hostile_records(rng: random.Random) -> list[tuple[bytes | None, bytes]]:
    """Random bytes, random JSON, envelope-shaped JSON with wrong parts, deep nesting, a
    null key, and one record just under the topic's size limit."""
    records: list[tuple[bytes | None, bytes]] = []
    for _ in range(4):
        records.append((b"order-h", rng.randbytes(rng.randrange(1, 300))))
        records.append((b"order-h", json.dumps(_random_json(rng)).encode()))
    records += [
        (None, b'{"commandId": "c", "commandType": "CreateOrder"}'),
        (b"order-h", b"[" * 5000 + b"]" * 5000),  # deeper than any JSON parser allows
        (b"order-h", b'{"eventType": "InventoryReserved", "eventId": 7, "data": []}'),
        (b"order-h", b'{"commandId": "c-h", "commandType": "Nope", "aggregateId": "x"}'),
        (b"order-h", b'{"tickId": [], "deadlineMs": "soon"}'),
        (b"order-h", rng.randbytes(MAX_RECORD_BYTES - 4096)),
    ]
    return records


Where = tuple[int, int]  # (partition, offset)


def send(bootstrap: str, topic: str, records: list[tuple[bytes | None, bytes]]) -> list[Where]:
    """Produce the records; where each one landed. A record over the topic's size limit
    is cut to just under the broker's default limit (the largest the topic takes)."""

    async def go() -> list[Where]:
        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, acks="all", max_request_size=MAX_RECORD_BYTES + 65536
        )
        await producer.start()
        try:
            landed = []
            for n, (key, value) in enumerate(records):
                try:
                    meta = await producer.send_and_wait(topic, value, key=key)
                except MessageSizeTooLargeError:  # this topic keeps the broker's 1 MB limit
                    records[n] = (key, value[: 1_000_000 - 4096])
                    meta = await producer.send_and_wait(topic, records[n][1], key=key)
                landed.append((meta.partition, meta.offset))
            return landed
        finally:
            await producer.stop()

    return asyncio.run(go())


def dead_lettered(bootstrap: str, topic: str) -> set[Where]:
    """Where the records in ``<topic>.dlq`` first failed."""
    found = set()
    for record in read_topic(bootstrap, f"{topic}.dlq"):
        headers = list(record.headers)
        if header(headers, "original-topic") == topic.encode():
            partition = int(header(headers, "original-partition") or b"-1")
            found.add((partition, int(header(headers, "original-offset") or b"-1")))
    return found


def test_hostile_records_on_every_consumed_topic_are_dead_lettered_or_answered(
    system: System,
) -> None:
    rng = random.Random(SEED)
    sent: dict[str, dict[Where, bytes]] = {}
    for names in CONSUMED.values():
        for name in names:
            topic = system.topic(name)
            records = hostile_records(rng)
            landed = send(system.bootstrap, topic, records)
            sent[topic] = {
                where: value for where, (_key, value) in zip(landed, records, strict=True)
            }
    commands = system.topic("orders.commands")

    def unaccounted() -> dict[str, list[Where]]:
        replies = {
            orjson.loads(r.value).get("commandId")
            for r in read_topic(system.bootstrap, system.topic("orders.replies"))
        }
        missing = {}
        for topic, records in sent.items():
            dead = dead_lettered(system.bootstrap, topic)
            left = [where for where, value in records.items() if where not in dead]
            if topic == commands:  # a command envelope may be answered instead
                left = [w for w in left if _command_id(records[w]) not in replies]
            if left:
                missing[topic] = left
        return missing

    try:
        wait_for(lambda: not unaccounted() or None, 120, "every hostile record dead-lettered")
    except AssertionError:
        raise AssertionError(f"not dead-lettered: {unaccounted()}\n{system.logs()}") from None

    for service in SERVICES:  # alive, ready, and still doing their work
        worker = system.workers[service]
        assert worker.proc is not None and worker.proc.poll() is None, service
        worker.wait_ready(timeout=30)
    status, reply = http_post_json(
        f"{system.url('orders')}/orders",
        {
            "orderId": "order-after-hostile",
            "customerId": "cust-happy",
            "items": [{"sku": "SKU-HAPPY", "quantity": 1, "unitPrice": "1.00"}],
            "paymentMethod": "card",
            "shippingAddress": {"country": "NL"},
        },
    )
    assert status == 201, reply
    system.wait_saga("order-after-hostile", "COMPLETED", timeout=60)


def _command_id(value: bytes) -> Any:
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    return doc.get("commandId") if isinstance(doc, dict) else None
