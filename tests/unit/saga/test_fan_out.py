"""The fan-out step (ReserveInventory per sku), pure: the machine against the real
inventory rules and handler, with answers delivered in any order, any number of times.

Property: whatever the interleaving, duplication, timeouts, crash re-sends and client
cancels, once every message is delivered the saga is in one terminal state, every sku's
stock is conserved, and the order's skus are all committed (COMPLETED) or all given back
(otherwise).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from streamapp.inventory.rules import InventoryRules
from streamapp.messages import Command
from streamapp.participant.handler import ParticipantHandler, reading
from streamapp.saga.definition import FanOut, order_fulfillment
from streamapp.saga.machine import (
    COMPENSATED,
    COMPENSATING,
    COMPENSATION_FAILED,
    COMPLETED,
    FAILED,
    RUNNING,
    STEP_COMPENSATED,
    SUCCEEDED,
    TERMINAL,
    SagaCommand,
    SagaMachine,
    SagaState,
    Transition,
)
from streamapp.saga.metrics import step_latencies

DEFINITION = order_fulfillment(
    step_timeout_ms=1000, compensation_timeout_ms=500, max_compensation_attempts=3
)
MACHINE = SagaMachine(DEFINITION)
T0 = 1_000_000
SKUS = ("A", "B", "C", "D")


def order(*lines: tuple[str, int]) -> dict[str, Any]:
    items = [{"sku": sku, "quantity": n, "unitPrice": "1.00"} for sku, n in lines]
    return {"customerId": "cust-1", "items": items, "totalAmount": "9.00"}


# -- the step, by example ---------------------------------------------------------------
def test_branches_group_the_items_by_sku_in_key_order() -> None:
    data = order(("B", 1), ("A", 2), ("B", 3))
    branches = FanOut("sku").branches("order-1", data)
    assert [key for key, _ in branches] == ["A", "B"]
    assert branches[1][1]["items"] == [data["items"][0], data["items"][2]]
    assert branches[1][1]["customerId"] == "cust-1"  # the rest of the data travels along
    # no usable item list: one branch keyed by the saga, the data as it is
    for bad in ({}, {"items": "x"}, {"items": [{"sku": 7}]}, {"items": []}):
        assert FanOut("sku").branches("order-1", bad) == (("order-1", bad),)


def test_the_step_waits_for_every_branch_then_moves_on() -> None:
    t = MACHINE.start("order-1", order(("A", 1), ("B", 2)), "corr", T0)
    a, b = t.commands
    assert [(c.command_type, c.key) for c in t.commands] == [
        ("ReserveInventory", "A"),
        ("ReserveInventory", "B"),
    ]
    assert a.command_id != b.command_id and b.data["items"] == [
        {"sku": "B", "quantity": 2, "unitPrice": "1.00"}
    ]
    t = MACHINE.on_event(t.state, "InventoryReserved", b.command_id, T0 + 1)
    assert not t.commands and t.state.step("ReserveInventory").status == "RUNNING"
    again = MACHINE.on_event(t.state, "InventoryReserved", b.command_id, T0 + 2)
    assert again.state == t.state and not again.commands  # a duplicate answer
    assert MACHINE.outstanding(t.state) == (a,)  # after a crash: only A is awaited
    t = MACHINE.on_event(t.state, "InventoryReserved", a.command_id, T0 + 3)
    assert [c.command_type for c in t.commands] == ["ProcessPayment"]
    assert [e.event_type for e in t.events] == ["SagaStepCompleted"]


def test_a_failed_branch_releases_exactly_the_reserved_ones() -> None:
    t = MACHINE.start("order-1", order(("A", 1), ("B", 1), ("C", 1)), "corr", T0)
    a, b, c = t.commands
    t = MACHINE.on_event(t.state, "InventoryReserved", a.command_id, T0 + 1)
    t = MACHINE.on_event(t.state, "InventoryReservationFailed", b.command_id, T0 + 2)
    assert t.state.state == COMPENSATING
    (release_a,) = t.commands
    assert (release_a.command_type, release_a.key) == ("ReleaseInventory", "A")
    # C answers late: reserved, so it is released too; then A's release confirms
    t = MACHINE.on_event(t.state, "InventoryReserved", c.command_id, T0 + 3)
    (release_c,) = t.commands
    assert (release_c.command_type, release_c.key) == ("ReleaseInventory", "C")
    t = MACHINE.on_event(t.state, "InventoryReleased", release_a.command_id, T0 + 4)
    assert t.state.state == COMPENSATING and not t.commands  # C's release is awaited
    t = MACHINE.on_event(t.state, "InventoryReleased", release_c.command_id, T0 + 5)
    assert t.state.state == COMPENSATED
    step = t.state.step("ReserveInventory")
    assert step.status == STEP_COMPENSATED
    assert [(x.key, x.status) for x in step.branches] == [
        ("A", "COMPENSATED"),
        ("B", "FAILED"),
        ("C", "COMPENSATED"),
    ]


def test_a_timed_out_branch_is_released_when_its_late_success_arrives() -> None:
    t = MACHINE.start("order-1", order(("A", 1), ("B", 1)), "corr", T0)
    a, b = t.commands
    t = MACHINE.on_event(t.state, "InventoryReserved", a.command_id, T0 + 1)
    t = MACHINE.on_timeout(t.state, T0 + 1000)
    assert t.state.state == COMPENSATING and [c.key for c in t.commands] == ["A"]
    t = MACHINE.on_event(t.state, "InventoryReleased", t.commands[0].command_id, T0 + 1001)
    assert t.state.state == COMPENSATED  # B's answer is unknown: nothing sent to B
    assert [c.command_type for c in t.commands] == ["CancelOrder"]
    late = MACHINE.on_event(t.state, "InventoryReserved", b.command_id, T0 + 5000)
    assert [(c.command_type, c.key) for c in late.commands] == [("ReleaseInventory", "B")]
    assert late.state.state == COMPENSATED
    assert late.state.step("ReserveInventory").branch("B").status == "COMPENSATING"


def test_commit_goes_to_every_sku_and_each_confirms_alone() -> None:
    t = MACHINE.start("order-1", order(("A", 1), ("B", 1)), "corr", T0)
    for command in t.commands:
        t = MACHINE.on_event(t.state, "InventoryReserved", command.command_id, T0 + 1)
    for answer in ("PaymentProcessed", "ShipmentScheduled", "OrderConfirmed"):
        t = MACHINE.on_event(t.state, answer, t.commands[0].command_id, T0 + 2)
    assert t.state.state == COMPLETED
    commit_a, commit_b = t.commands
    assert [(c.command_type, c.key) for c in t.commands] == [
        ("CommitInventory", "A"),
        ("CommitInventory", "B"),
    ]
    assert commit_a.data["items"][0]["sku"] == "A"
    t = MACHINE.on_event(t.state, "InventoryCommitted", commit_b.command_id, T0 + 3)
    assert t.state.end is not None and t.state.end.status == "AWAITING"
    assert MACHINE.outstanding(t.state) == (commit_a,)
    assert MACHINE.on_timeout(t.state, T0 + 10_000).commands == (commit_a,)
    t = MACHINE.on_event(t.state, "InventoryCommitted", commit_a.command_id, T0 + 4)
    assert t.state.end is not None and t.state.end.status == "CONFIRMED"
    assert t.state.end.confirmed == ("B", "A")  # every sku listed, in answer order
    assert t.state.settled()


def test_the_step_latency_of_a_fan_out_that_ends_while_compensating() -> None:
    """One branch reserved, then a failure, a timeout or a cancel: the step goes from
    RUNNING straight to releasing it, and its outcome is still observed."""
    t = MACHINE.start("order-1", order(("A", 1), ("B", 1)), "corr", T0)
    a, b = t.commands
    t = MACHINE.on_event(t.state, "InventoryReserved", a.command_id, T0 + 100)
    failed = MACHINE.on_event(t.state, "InventoryReservationFailed", b.command_id, T0 + 200)
    timed_out = MACHINE.on_timeout(t.state, T0 + 1000)
    cancelled = MACHINE.cancel(t.state, "changed my mind", T0 + 300)
    for after, outcome, seconds in (
        (failed, "failed", 0.2),
        (timed_out, "timed_out", 1.0),
        (cancelled, "abandoned", 0.3),
    ):
        assert after.state.step("ReserveInventory").status == "COMPENSATING"
        latencies = step_latencies(t.state, after.state, after.state.updated_ms)
        assert latencies == [("ReserveInventory", outcome, seconds)]


def test_a_step_whose_compensation_gave_up_stays_failed_when_a_late_branch_is_undone() -> None:
    t = MACHINE.start("order-1", order(("A", 1), ("B", 1)), "corr", T0)
    a, b = t.commands
    t = MACHINE.on_event(t.state, "InventoryReserved", a.command_id, T0 + 1)
    at = T0 + 1000
    t = MACHINE.on_timeout(t.state, at)  # times out; A's release is never confirmed
    for _ in range(3):
        at += 500
        t = MACHINE.on_timeout(t.state, at)
    assert t.state.state == FAILED
    late = MACHINE.on_event(t.state, "InventoryReserved", b.command_id, at + 1)
    (release_b,) = late.commands
    done = MACHINE.on_event(late.state, "InventoryReleased", release_b.command_id, at + 2)
    step = done.state.step("ReserveInventory")
    assert step.status == COMPENSATION_FAILED and done.state.state == FAILED
    assert [(x.key, x.status) for x in step.branches] == [
        ("A", COMPENSATION_FAILED),
        ("B", "COMPENSATED"),
    ]
    assert not done.events  # no SagaStepCompensated: A still holds its units


def test_a_saga_state_with_branches_survives_its_stored_form() -> None:
    t = MACHINE.start("order-1", order(("A", 1), ("B", 1)), "corr", T0)
    t = MACHINE.on_event(t.state, "InventoryReserved", t.commands[1].command_id, T0 + 1)
    assert SagaState.from_dict(t.state.to_dict()) == t.state
    assert t.state.step("ReserveInventory").branch("B").status == SUCCEEDED


# -- the property ------------------------------------------------------------------------
@dataclass
class World:
    """The saga, the real inventory service (one handler per sku: a sku's partition),
    stand-ins for payments, shipping and the order, and the messages in flight."""

    pay_ok: bool
    ship_ok: bool
    stock: dict[str, int]
    state: SagaState | None = None
    now: int = T0
    in_flight: list[tuple[str, Any]] = field(default_factory=list)  # ("command"|"event", x)
    inventory: dict[str, ParticipantHandler] = field(default_factory=dict)
    order_status: str = "PENDING"
    saga_events: list[str] = field(default_factory=list)
    sent: dict[str, SagaCommand] = field(default_factory=dict)  # every command, by id

    def __post_init__(self) -> None:
        for sku, units in self.stock.items():
            handler = ParticipantHandler(InventoryRules(), {"entities": {}, "records": {}})
            seed = Command(f"seed-{sku}", "SeedInventory", "seed", {"stock": {sku: units}})
            handler.handle(seed, T0)
            self.inventory[sku] = handler

    def apply(self, t: Transition) -> None:
        self.state = t.state
        self.saga_events += [e.event_type for e in t.events]
        self.in_flight += [("command", c) for c in t.commands]
        for command in t.commands:  # a command id always means the same command
            assert self.sent.setdefault(command.command_id, command) == command
        self.check_outstanding()

    def check_outstanding(self) -> None:
        """What a crash re-sends: commands sent before (same id, key, data), and for the
        fan-out step exactly its awaited branches."""
        assert self.state is not None
        outstanding = MACHINE.outstanding(self.state)
        for command in outstanding:
            assert self.sent.get(command.command_id) == command
        step = self.state.step("ReserveInventory")
        awaited = {c.key for c in outstanding if c.topic == "inventory.commands"}
        if step.status == RUNNING:
            assert awaited == set(step.keys(RUNNING))
        elif step.status == "COMPENSATING":
            assert awaited == set(step.keys("COMPENSATING"))

    def deliver(self, index: int, keep: bool = False) -> None:
        kind, message = self.in_flight[index] if keep else self.in_flight.pop(index)
        self.now += 7
        if kind == "command":
            self._participant(message)
            return
        assert self.state is not None
        event_type, causation = message
        if event_type == "OrderCancelled":
            self.apply(MACHINE.cancel(self.state, "cancelled", self.now))
        else:
            self.apply(MACHINE.on_event(self.state, event_type, causation, self.now))

    def _participant(self, command: SagaCommand) -> None:
        answer: str | None = None
        kind = command.command_type
        if command.topic == "inventory.commands":
            envelope = Command(command.command_id, kind, command.saga_id, dict(command.data))
            event = self.inventory[command.key].handle(envelope, self.now).event
            answer = event.event_type if event is not None else None
        elif kind == "ProcessPayment":
            answer = "PaymentProcessed" if self.pay_ok else "PaymentFailed"
        elif kind == "RefundPayment":
            answer = "PaymentRefunded"
        elif kind == "ScheduleShipment":
            answer = "ShipmentScheduled" if self.ship_ok else "ShipmentFailed"
        elif kind == "CancelShipment":
            answer = "ShipmentCancelled"
        elif kind == "ConfirmOrder" and self.order_status != "CANCELLED":
            self.order_status, answer = "CONFIRMED", "OrderConfirmed"
        elif kind == "CancelOrder" and self.order_status != "CONFIRMED":
            self.order_status = "CANCELLED"
            self.in_flight.append(("event", ("OrderCancelled", None)))
        if answer is not None:
            self.in_flight.append(("event", (answer, command.command_id)))

    def lose(self, index: int) -> None:
        """A command the orchestrator stored as sent but lost with its process (a crash
        between the table write and the send): only deadlines and re-sends recover it."""
        if self.in_flight[index][0] == "command":
            self.in_flight.pop(index)

    def client_cancel(self) -> None:
        if self.order_status == "PENDING":
            self.order_status = "CANCELLED"
            self.in_flight.append(("event", ("OrderCancelled", None)))

    def level(self, sku: str) -> dict[str, int]:
        return dict(reading(self.inventory[sku].tables)["entities"][sku.encode()])


actions = st.lists(
    st.tuples(
        st.sampled_from(
            ("deliver", "deliver", "deliver", "duplicate", "tick", "crash", "cancel", "lose")
        ),
        st.integers(0, 50),
    ),
    max_size=60,
)
lines = st.dictionaries(st.sampled_from(SKUS), st.integers(1, 3), min_size=1, max_size=4)


@settings(max_examples=300, deadline=None)
@given(
    lines=lines,
    stock=st.fixed_dictionaries({sku: st.integers(0, 4) for sku in SKUS}),
    pay_ok=st.booleans(),
    ship_ok=st.booleans(),
    course=actions,
)
def test_any_interleaving_ends_terminal_with_stock_conserved_and_all_or_nothing(
    lines: dict[str, int],
    stock: dict[str, int],
    pay_ok: bool,
    ship_ok: bool,
    course: list[tuple[str, int]],
) -> None:
    world = World(pay_ok, ship_ok, stock)
    world.apply(MACHINE.start("order-1", order(*sorted(lines.items())), "corr", T0))
    for action, pick in course:
        assert world.state is not None
        if action in ("deliver", "duplicate") and world.in_flight:
            world.deliver(pick % len(world.in_flight), keep=action == "duplicate")
        elif action == "tick":
            world.now += 600  # past compensation deadlines, sometimes past a step's
            world.apply(MACHINE.on_timeout(world.state, world.now))
        elif action == "crash":  # the orchestrator re-sends what its state awaits
            world.apply(Transition(world.state, MACHINE.outstanding(world.state)))
        elif action == "cancel":
            world.client_cancel()
        elif action == "lose" and world.in_flight:
            world.lose(pick % len(world.in_flight))
    # then the network delivers everything, and deadlines pass, until nothing is left
    for _ in range(500):
        assert world.state is not None
        if world.in_flight:
            world.deliver(0)
            continue
        deadline = world.state.next_deadline()
        if deadline is None:
            break
        world.now = max(world.now, deadline)
        world.apply(MACHINE.on_timeout(world.state, world.now))
    final = world.state
    assert final is not None and not world.in_flight and final.next_deadline() is None
    assert final.state in TERMINAL
    assert not {"SagaCompleted", "SagaCompensated"} <= set(world.saga_events)
    assert world.saga_events.count("SagaCompleted") <= 1
    assert world.saga_events.count("SagaCompensated") <= 1
    for sku, units in stock.items():
        level = world.level(sku)
        assert level["available"] + level["reserved"] + level["committed"] == units
        assert level["reserved"] == 0  # every reservation was committed or given back
        wanted = lines.get(sku, 0)
        if final.state == COMPLETED:
            assert level["committed"] == wanted and world.order_status == "CONFIRMED"
        else:
            assert level["committed"] == 0
