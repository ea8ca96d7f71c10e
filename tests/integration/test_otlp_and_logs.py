"""OTLP export and JSON logs through the four real services.

The test runs its own OTLP/HTTP endpoint (an aiohttp server decoding the protobuf
ExportTraceServiceRequest, as a collector does); the workers export to it and write JSON
log lines. A completed order's spans are one trace (the client's), parented hop by hop
along the saga's causation chain; a dead-lettered command's log line names its record.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as ProtoSpan
from opentelemetry.proto.trace.v1.trace_pb2 import Status

from streamapp.messages import new_id
from streamapp.settings import SERVICES
from streamapp.tracing.context import parse
from tests.integration.kafka_io import read_topic, send_records
from tests.integration.support import free_port, http_post_json, wait_for
from tests.integration.system import System

pytestmark = pytest.mark.integration

CLIENT_TRACE = "0af7651916cd43dd8448eb211c80319c"
CLIENT_PARENT = "b7ad6b7169203331"


@dataclass(frozen=True)
class Received:
    """One span as the endpoint decoded it (ids as hex, attributes as Python values)."""

    service: str
    name: str
    kind: int
    trace_id: str
    span_id: str
    parent_id: str
    attributes: dict[str, Any]
    status: int
    status_message: str


def _value(value: AnyValue) -> Any:
    return getattr(value, value.WhichOneof("value") or "string_value")


class OtlpEndpoint:
    """An OTLP/HTTP traces endpoint on a loopback port, in a thread of its own."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1/traces"
        self.spans: list[Received] = []
        self.requests = 0
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None

    async def _traces(self, request: web.Request) -> web.Response:
        assert request.content_type == "application/x-protobuf"
        export = ExportTraceServiceRequest.FromString(await request.read())
        found = []
        for resource_spans in export.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    found.append(
                        Received(
                            service=resource["service.name"],
                            name=span.name,
                            kind=span.kind,
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_id=span.parent_span_id.hex(),
                            attributes={a.key: _value(a.value) for a in span.attributes},
                            status=span.status.code,
                            status_message=span.status.message,
                        )
                    )
        with self._lock:
            self.requests += 1
            self.spans.extend(found)
        return web.Response(
            body=ExportTraceServiceResponse().SerializeToString(),
            content_type="application/x-protobuf",
        )

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/traces", self._traces)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    def start(self) -> OtlpEndpoint:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def received(self) -> list[Received]:
        with self._lock:
            return list(self.spans)


@pytest.fixture(scope="module")
def endpoint() -> Iterator[OtlpEndpoint]:
    receiver = OtlpEndpoint().start()
    yield receiver
    receiver.stop()


@pytest.fixture(scope="module")
def system(
    bootstrap: str, endpoint: OtlpEndpoint, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[System]:
    deployment = System(
        bootstrap,
        tmp_path_factory.mktemp("otlp"),
        otlp_endpoint=endpoint.url,
        log_format="json",
        # No end command is re-sent by a deadline timer (a timer's send starts a trace).
        saga_compensation_timeout_ms="60000",
    )
    deployment.start()
    yield deployment
    deployment.stop()


def spans_of(endpoint: OtlpEndpoint, correlation_id: str) -> list[Received]:
    return [s for s in endpoint.received() if s.attributes.get("correlationId") == correlation_id]


def candidates(spans: list[Received], agent: str, message_type: str) -> list[Received]:
    """The spans of `agent` processing records of `message_type` (a redelivered record
    is processed again, in a span of its own)."""
    found = [
        s
        for s in spans
        if s.attributes["streamapp.agent"] == agent
        and s.attributes.get("streamapp.message.type") == message_type
    ]
    assert found, (agent, message_type, [(s.name, s.attributes) for s in spans])
    return found


#: The happy saga's causation chain: each (agent, record type) caused the next one.
CHAIN = [
    ("orders", "CreateOrder"),
    ("saga", "OrderCreated"),
    ("inventory", "ReserveInventory"),
    ("saga", "InventoryReserved"),
    ("payments", "ProcessPayment"),
    ("saga", "PaymentProcessed"),
    ("shipping", "ScheduleShipment"),
    ("saga", "ShipmentScheduled"),
    ("orders", "ConfirmOrder"),
    ("saga", "OrderConfirmed"),
    ("inventory", "CommitInventory"),
]


def test_a_completed_orders_spans_are_the_clients_trace_parented_along_its_causation(
    system: System, endpoint: OtlpEndpoint
) -> None:
    order_id = f"order-{new_id()[:12]}"
    status, reply = http_post_json(
        f"{system.url('orders')}/orders",
        {
            "orderId": order_id,
            "customerId": "cust-happy",
            "items": [{"sku": "SKU-HAPPY", "quantity": 1, "unitPrice": "10.00"}],
            "paymentMethod": "card",
            "shippingAddress": {"country": "NL", "city": "Delft", "line1": "Mekelweg 4"},
        },
        headers={"traceparent": f"00-{CLIENT_TRACE}-{CLIENT_PARENT}-01"},
    )
    assert status == 201, reply
    correlation = reply["commandId"]
    system.wait_saga(order_id, "COMPLETED")

    def chain_exported() -> list[Received] | None:
        spans = spans_of(endpoint, correlation)
        seen = {
            (s.attributes["streamapp.agent"], s.attributes["streamapp.message.type"]) for s in spans
        }
        return spans if set(CHAIN) <= seen else None

    spans = wait_for(chain_exported, 30, "the saga's spans at the OTLP endpoint", 0.5)

    # One trace, the client's; every span a CONSUMER span of its service.
    assert {s.trace_id for s in spans} == {CLIENT_TRACE}
    assert {s.kind for s in spans} == {ProtoSpan.SPAN_KIND_CONSUMER}
    assert {s.service for s in spans} == {f"streamapp-{service}" for service in SERVICES}
    assert len({s.span_id for s in spans}) == len(spans)

    # Parent links follow the causation chain: each step's span is a child of the span
    # of the record that caused it.
    creates = candidates(spans, *CHAIN[0])
    causes = creates
    for agent, kind in CHAIN[1:]:
        found = candidates(spans, agent, kind)
        effects = [s for s in found if s.parent_id in {c.span_id for c in causes}]
        assert effects, (agent, kind, causes, found)
        causes = effects

    # The first span's parent is the POST /orders request's span: the CreateOrder record's
    # traceparent names it, and its own parent is the client's.
    create = creates[0]
    commands = [
        r
        for r in read_topic(system.bootstrap, system.topic("orders.commands"))
        if orjson.loads(r.value).get("commandId") == correlation
    ]
    assert len(commands) == 1
    caller = parse(dict(commands[0].headers)["traceparent"])
    assert caller is not None and caller[0] == CLIENT_TRACE
    assert create.parent_id == caller[1] != CLIENT_PARENT

    # Messaging attributes name the record; a span carries what it processed.
    assert create.name == f"orders process {system.topic('orders.commands')}"
    assert create.attributes["messaging.system"] == "kafka"
    assert create.attributes["messaging.destination.name"] == system.topic("orders.commands")
    assert create.attributes["messaging.kafka.message.key"] == order_id
    assert create.attributes["messaging.kafka.offset"] == commands[0].offset
    assert create.attributes["messaging.destination.partition.id"] == str(commands[0].partition)
    assert all(s.status != Status.STATUS_CODE_ERROR for s in spans)


def test_json_log_lines_name_the_record_and_a_dead_letter_is_an_error_span(
    system: System, endpoint: OtlpEndpoint
) -> None:
    # A schema-invalid command (no data) with a correlationId and the client's trace.
    correlation = f"corr-{new_id()[:12]}"
    trace = new_id().replace("-", "")[:32].ljust(32, "0")
    command = {
        "commandId": correlation,
        "commandType": "CreateOrder",
        "aggregateId": "order-bad",
        "correlationId": correlation,
    }
    send_records(
        system.bootstrap,
        system.topic("orders.commands"),
        [
            (
                b"order-bad",
                orjson.dumps(command),
                [("traceparent", f"00-{trace}-{CLIENT_PARENT}-01".encode())],
            )
        ],
    )

    def logged() -> dict[str, Any] | None:
        for line in log_lines(system.root / "orders.log"):
            if line.get("correlationId") == correlation and "dead-lettered" in line["message"]:
                return line
        return None

    line = wait_for(logged, 30, "the dead letter's log line", 0.5)
    assert line["level"] == "WARNING" and line["logger"] == "streamapp.resilience.deadletter"
    assert line["traceId"] == trace

    # Its span is an error span in the same trace, parented by the sender's span.
    def error_span() -> Received | None:
        found = spans_of(endpoint, correlation)
        return found[0] if found else None

    span = wait_for(error_span, 30, "the dead letter's span", 0.5)
    assert span.trace_id == trace and span.parent_id == CLIENT_PARENT
    assert span.span_id == line["spanId"]
    assert span.status == Status.STATUS_CODE_ERROR and span.attributes["error.type"]
    assert span.status_message.startswith(span.attributes["error.type"])


def test_every_line_the_workers_wrote_to_their_end_is_a_json_object(system: System) -> None:
    system.stop()
    for service in SERVICES:
        lines = log_lines(system.root / f"{service}.log")
        assert lines[0]["logger"] == "faust.cli.worker" and lines[0]["banner"]["id"]
        assert any("Stopping" in line["message"] for line in lines), service


def log_lines(path: Path) -> list[dict[str, Any]]:
    """Every line of a worker's output, each parsed as one JSON log object."""
    found = []
    for number, text in enumerate(path.read_text().splitlines(), 1):
        try:
            line = orjson.loads(text)
        except orjson.JSONDecodeError:
            raise AssertionError(f"{path.name}:{number} is not JSON: {text!r}") from None
        assert isinstance(line, dict), (path.name, number, text)
        assert {"time", "level", "logger", "message"} <= line.keys(), (path.name, text)
        assert line["time"].endswith("+00:00"), line
        found.append(line)
    return found
