"""config/schemas: one valid Draft 2020-12 schema per command and event type named in the
code, and the real messages of the pure core validate against them.

The messages come from the pure code wired together in memory (a small world): clients'
commands go through the order event store (OrderCommandHandler), its events drive the
saga (orchestration.react), the saga's commands go to the participant handlers with
their rules, their answers go back to the saga. Every envelope is taken as it goes on the
wire (``to_json``), so what is checked is what Kafka carries.

Validation uses ``jsonschema_rs`` (a dependency of the dev extras, via schemathesis); the
reference implementation ``jsonschema`` cross-checks when it is installed.
"""

from __future__ import annotations

import ast
import inspect
import json
import re
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema_rs
import orjson
import pytest

from streamapp.errors import ValidationError
from streamapp.eventstore.store import EventStore
from streamapp.inventory import rules as inventory
from streamapp.messages import Command, Event, derived_id
from streamapp.orders import aggregate
from streamapp.orders.handler import OrderCommandHandler, SourceRecord, order_repository
from streamapp.participant.handler import ParticipantHandler, Tables
from streamapp.payments import rules as payments
from streamapp.saga import definition, machine, orchestration
from streamapp.saga.machine import SagaMachine
from streamapp.saga.orchestration import TIMEOUTS, Incoming, SagaRecord, react
from streamapp.seeds import load_seeds
from streamapp.shipping import rules as shipping
from streamapp.tools import loadgen
from tests.unit.orders.factories import ITEMS, command, create

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "config" / "schemas"
DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"
T0 = 1_795_000_000_000
COMPENSATION_TIMEOUT_MS = 10_000

#: The pure modules that name command and event types (as string literals).
MESSAGE_MODULES: tuple[ModuleType, ...] = (
    aggregate,
    inventory,
    payments,
    shipping,
    definition,
    machine,
    orchestration,
)
CAMEL_CASE = re.compile(r"[A-Z][a-z]+(?:[A-Z][a-z]+)+")
#: CamelCase literals in those modules that are not message types.
NOT_MESSAGE_TYPES = frozenset({"OrderFulfillment"})  # the saga type


def load_schemas() -> dict[str, dict[str, Any]]:
    return {path.stem: json.loads(path.read_text()) for path in sorted(SCHEMAS.glob("*.json"))}


ALL_SCHEMAS = load_schemas()
VALIDATORS = {name: jsonschema_rs.validator_for(schema) for name, schema in ALL_SCHEMAS.items()}


def message_type(message: dict[str, Any]) -> str:
    return str(message.get("commandType") or message.get("eventType"))


def errors(message: dict[str, Any], subject: str | None = None) -> list[str]:
    validator = VALIDATORS[subject or message_type(message)]
    return [f"{list(e.instance_path)}: {e.message}" for e in validator.iter_errors(message)]


# -- the types the code names ---------------------------------------------------------------
def types_in_code() -> set[str]:
    """Every CamelCase string literal of the message modules (a new type shows up here
    however it is written: a Reaction, a SagaEvent, a comparison, a definition)."""
    found: set[str] = set()
    for module in MESSAGE_MODULES:
        tree = ast.parse(inspect.getsource(module))
        found |= {
            node.value
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and CAMEL_CASE.fullmatch(node.value)
        }
    return found - NOT_MESSAGE_TYPES


def types_in_saga_definition() -> set[str]:
    saga = definition.order_fulfillment()
    found: set[str] = set()
    for step in saga.steps:
        found |= {step.command, *step.succeeded_by, *step.failed_by}
        if step.compensation is not None:
            found |= {step.compensation.command, *step.compensation.confirmed_by}
            found |= set(step.compensation.failed_by)
    for end in (saga.on_completed, saga.on_compensated):
        if end is not None:
            found |= {end.command, *end.confirmed_by}
    return found


# -- the world: the pure core wired in memory ----------------------------------------------------
def participant_tables() -> Tables:
    return {"entities": {}, "records": {}}


def seed_command(service: str, command_type: str, data: dict[str, Any]) -> Command:
    """As services.participant.ParticipantService.send_seed builds it (a Faust module)."""
    content = orjson.dumps(data, option=orjson.OPT_SORT_KEYS).decode()
    return Command(derived_id(command_type, content), command_type, f"seed-{service}", data)


class World:
    """Clients, the order event store, the saga and the participants, in memory."""

    def __init__(self, max_compensation_attempts: int = 5) -> None:
        self.machine = SagaMachine(
            definition.order_fulfillment(
                step_timeout_ms=1000,
                compensation_timeout_ms=COMPENSATION_TIMEOUT_MS,
                max_compensation_attempts=max_compensation_attempts,
            )
        )
        self.orders = OrderCommandHandler(order_repository(EventStore({}), 10))
        self.participants = {
            "inventory": ParticipantHandler(inventory.InventoryRules(), participant_tables()),
            "payments": ParticipantHandler(payments.PaymentRules(), participant_tables()),
            "shipping": ParticipantHandler(
                shipping.ShippingRules(["NL", "DE"]), participant_tables()
            ),
        }
        self.sagas: dict[str, SagaRecord] = {}
        self.offsets: dict[str, int] = {}
        self.messages: list[dict[str, Any]] = []  # every envelope, as sent
        self.lost: set[str] = set()  # command types sent but never delivered
        self.now = T0
        self.send(
            "inventory.commands", seed_command("inventory", "SeedInventory", {"stock": STOCK})
        )
        self.send("payments.commands", seed_command("payments", "SeedAccounts", {"limits": LIMITS}))

    def _offset(self, topic: str) -> int:
        self.offsets[topic] = self.offsets.get(topic, -1) + 1
        return self.offsets[topic]

    def _record(self, message: Command | Event) -> None:
        self.messages.append(orjson.loads(message.to_json()))

    def send(self, topic: str, cmd: Command) -> None:
        self._record(cmd)
        if cmd.command_type in self.lost:
            return
        service = topic.split(".")[0]
        if service == "orders":
            source = SourceRecord(0, self._offset(topic), self.now)
            for event in self.orders.handle(cmd, source, self.now).events:
                self._publish("orders", event)
        else:
            answer = self.participants[service].handle(cmd, self.now).event
            if answer is not None:
                self._publish(service, answer)

    def _publish(self, source: str, event: Event) -> None:
        self._record(event)
        topic = f"{source}.events"
        incoming = Incoming(
            source,
            topic,
            self._offset(topic),
            event.event_type,
            event.event_id,
            event.causation_id,
            event.correlation_id,
            dict(event.data),
        )
        self._react(event.aggregate_id, incoming)

    def _react(self, saga_id: str, incoming: Incoming) -> None:
        reaction = react(self.machine, saga_id, self.sagas.get(saga_id), incoming, self.now)
        if reaction.delete:
            self.sagas.pop(saga_id, None)
        elif reaction.record is not None:
            self.sagas[saga_id] = reaction.record
        for event in reaction.events:
            self._record(event)
        for topic, _, cmd in reaction.commands:
            self.send(topic, cmd)

    def tick(self, saga_id: str, advance_ms: int) -> None:
        """The saga timer's tick for `saga_id`, `advance_ms` later."""
        self.now += advance_ms
        offset = self._offset("sagas.timeouts")
        tick = Incoming(TIMEOUTS, "sagas.timeouts", offset, "Timeout", f"t{offset}", None, None, {})
        self._react(saga_id, tick)

    def state(self, saga_id: str) -> str:
        return self.sagas[saga_id].state.state


STOCK = {"SKU-1": 50, "SKU-2": 50}
LIMITS = {"cust-7": "1000.00", "cust-broke": "0.00"}


def order(order_id: str, **data: Any) -> Command:
    return create(order_id, **data)


def run_scenarios() -> list[dict[str, Any]]:
    """Drive the world through every outcome; return every envelope sent."""
    world = World()
    # completed, then a note
    world.send("orders.commands", order("order-ok"))
    assert world.state("order-ok") == machine.COMPLETED
    world.send("orders.commands", command("AddOrderNote", "order-ok", note="ring twice"))
    # no shipments to US: compensated (refund, release), the saga cancels the order
    address = {"country": "US", "city": "Boston"}
    world.send("orders.commands", order("order-us", shippingAddress=address))
    assert world.state("order-us") == machine.COMPENSATED
    # out of stock, and a declined payment
    too_many = [{"sku": "SKU-1", "quantity": 1000, "unitPrice": "1.00"}]
    world.send("orders.commands", order("order-stockout", items=too_many))
    world.send("orders.commands", order("order-broke", customerId="cust-broke"))
    assert world.state("order-stockout") == world.state("order-broke") == machine.COMPENSATED
    # the client cancels while ConfirmOrder is on its way: the shipment is cancelled too
    world.lost = {"ConfirmOrder"}
    world.send("orders.commands", order("order-cancel", paymentMethod=None))
    world.send("orders.commands", command("CancelOrder", "order-cancel", reason="changed mind"))
    assert world.state("order-cancel") == machine.COMPENSATED
    # the client cancels (no reason) while the reservation is on its way
    world.lost = {"ReserveInventory"}
    world.send("orders.commands", order("order-early", items=ITEMS[:1]))
    world.send("orders.commands", command("CancelOrder", "order-early"))
    assert world.state("order-early") == machine.COMPENSATED
    # a refund that never arrives: the saga gives up compensating, FAILED
    world.lost = {"RefundPayment"}
    world.send("orders.commands", order("order-stuck", shippingAddress=address))
    for _ in range(10):
        world.tick("order-stuck", COMPENSATION_TIMEOUT_MS)
    assert world.state("order-stuck") == machine.FAILED
    # compensations of sagas a participant holds nothing for (late, repeated)
    world.lost = set()
    world.send("shipping.commands", Command("c-cs", "CancelShipment", "order-none", {}))
    world.send("payments.commands", Command("c-rp", "RefundPayment", "order-none", {}))
    # the clients of loadgen (CreateOrder, CancelOrder with a reason)
    seeds = load_seeds(ROOT / "config" / "seeds.toml")
    for planned in loadgen.plan_orders(20, {loadgen.CANCEL: 0.5}, seeds, 7, "schemas"):
        world._record(planned.create)
        if planned.cancel is not None:
            world._record(planned.cancel)
    return world.messages


MESSAGES = run_scenarios()


def messages_of(kind: str) -> Iterator[dict[str, Any]]:
    return (m for m in MESSAGES if message_type(m) == kind)


# -- the tests ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(ALL_SCHEMAS))
def test_each_file_is_a_draft_2020_12_schema_titled_with_its_subject(name: str) -> None:
    schema = ALL_SCHEMAS[name]
    assert schema["$schema"] == DRAFT_2020_12
    jsonschema_rs.meta.validate(schema)  # raises with the reason when invalid
    assert isinstance(VALIDATORS[name], jsonschema_rs.Draft202012Validator)
    assert schema["title"] == name
    kind = "commandType" if "commandType" in schema["properties"] else "eventType"
    assert schema["properties"][kind] == {"const": name}
    # open content model on the envelope and its data: additive changes stay compatible
    assert schema.get("additionalProperties", True) is not False
    assert schema["properties"]["data"].get("additionalProperties", True) is not False
    required = {"commandId", "commandType", "aggregateId"}
    if kind == "eventType":
        required = set(Event("", "", "", "", 1, "", "", None, "", {}).to_dict())
    assert required <= set(schema["required"])


def test_every_type_named_in_the_code_has_a_schema_and_every_schema_a_type() -> None:
    named = types_in_code()
    assert set(aggregate.COMMAND_TYPES) <= named
    assert types_in_saga_definition() <= named
    assert named == set(ALL_SCHEMAS)


def test_the_scenarios_produce_every_type() -> None:
    assert {message_type(m) for m in MESSAGES} == set(ALL_SCHEMAS)


@pytest.mark.parametrize("name", sorted(ALL_SCHEMAS))
def test_real_messages_validate_against_their_schema(name: str) -> None:
    produced = list(messages_of(name))
    assert produced
    for message in produced:
        assert errors(message) == [], message


def test_null_and_empty_shapes_the_code_writes_are_covered() -> None:
    refunded = [m["data"] for m in messages_of("PaymentRefunded")]
    assert {"customerId": None, "amount": "0"} in refunded
    cancelled = [m["data"] for m in messages_of("ShipmentCancelled")]
    assert {"cancelled": False} in cancelled and any(c["cancelled"] for c in cancelled)
    created = [m["data"] for m in messages_of("OrderCreated")]
    assert any(c["paymentMethod"] is None for c in created)
    assert any(m["data"] == {} for m in messages_of("CancelOrder"))
    assert any(m["causationId"] is None for m in messages_of("CreateOrder"))


def a(kind: str) -> dict[str, Any]:
    """A copy of the first real message of a type, to break."""
    return json.loads(json.dumps(next(messages_of(kind))))


def broken() -> Iterator[tuple[str, dict[str, Any]]]:
    cases: list[tuple[str, Any]] = [
        ("float price", lambda m: m["data"]["items"][0].update(unitPrice=9.99)),
        ("exponent price", lambda m: m["data"]["items"][0].update(unitPrice="1e3")),
        ("5 decimals", lambda m: m["data"]["items"][0].update(unitPrice="1.00001")),
        ("zero quantity", lambda m: m["data"]["items"][0].update(quantity=0)),
        ("no items", lambda m: m["data"].update(items=[])),
        ("no customer", lambda m: m["data"].pop("customerId")),
        ("no country", lambda m: m["data"]["shippingAddress"].pop("country")),
        ("slash in id", lambda m: m.update(commandId="a/b")),
        ("negative expectedVersion", lambda m: m.update(expectedVersion=-1)),
        ("no data", lambda m: m.pop("data")),
    ]
    for name, breaks in cases:
        message = a("CreateOrder")
        breaks(message)
        yield f"CreateOrder: {name}", message
    event = a("OrderCreated")
    event["eventType"] = "OrderCancelled"
    yield "OrderCreated: another eventType", event
    event = a("OrderCreated")
    event["version"] = 0
    yield "OrderCreated: version 0", event
    event = a("OrderCreated")
    del event["schemaVersion"]
    yield "OrderCreated: no schemaVersion", event
    event = a("OrderCreated")
    event["data"]["totalAmount"] = "-1.00"
    yield "OrderCreated: negative total", event
    event = a("SagaStepCompleted")
    event["data"]["step"] = "Bogus"
    yield "SagaStepCompleted: unknown step", event
    event = a("ShipmentCancelled")
    event["data"] = {"cancelled": True}
    yield "ShipmentCancelled: cancelled without the shipment", event
    event = a("PaymentProcessed")
    event["aggregateType"] = "Order"
    yield "PaymentProcessed: another aggregateType", event
    note = a("AddOrderNote")
    note["data"]["note"] = "x" * 2001
    yield "AddOrderNote: too long", note


@pytest.mark.parametrize(("case", "message"), list(broken()), ids=[c for c, _ in broken()])
def test_broken_messages_do_not_validate(case: str, message: dict[str, Any]) -> None:
    assert errors(message, case.split(":")[0]) != []


def test_the_envelope_is_open_to_additive_fields() -> None:
    message = a("OrderCreated")
    message["traceId"] = "new optional field"
    message["data"]["giftWrap"] = True
    assert errors(message) == []


PRICES = ["9.99", "0", "0.0001", "999999999999.9999", "00012.5", "1e3", " 5", "1_000", "-1"]
PRICES += ["1.", ".5", "9.99\n", "1234567890123", "1.00001", "NaN", "Infinity"]


@pytest.mark.parametrize("price", PRICES)
def test_the_money_pattern_accepts_exactly_what_the_aggregate_accepts(price: str) -> None:
    message = a("CreateOrder")
    message["data"]["items"] = [{"sku": "A", "quantity": 1, "unitPrice": price}]
    try:
        aggregate.decide(None, Command.from_dict(message))
        accepted = True
    except ValidationError:
        accepted = False
    assert (errors(message) == []) is accepted


def test_the_reference_implementation_agrees() -> None:
    import jsonschema  # the reference implementation (a dev dependency)

    for schema in ALL_SCHEMAS.values():
        jsonschema.Draft202012Validator.check_schema(schema)
    for message in MESSAGES:
        schema = ALL_SCHEMAS[message_type(message)]
        assert list(jsonschema.Draft202012Validator(schema).iter_errors(message)) == []
    for case, message in broken():
        schema = ALL_SCHEMAS[case.split(":")[0]]
        assert not jsonschema.Draft202012Validator(schema).is_valid(message), case
