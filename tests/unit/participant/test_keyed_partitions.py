"""Payments on several partitions: each partition's state is exactly its changelog.

A Faust agent writes a table change to the changelog partition of the record it is
processing and, while processing it, reads only that partition's store. This models
that: one table (and one handler) per partition of payments.commands, each command
processed by the partition its record key hashes to (Kafka's default partitioner), with
the keys the saga machine gives its commands and the seeds ``account_seeds`` sends.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from aiokafka.partitioner import DefaultPartitioner
from hypothesis import given, settings
from hypothesis import strategies as st

from streamapp.messages import Command
from streamapp.participant.handler import ParticipantHandler, Prefixed, unwrap
from streamapp.payments.rules import PAYMENT, PaymentRules, account_key, account_seeds
from streamapp.saga.definition import order_fulfillment
from streamapp.saga.machine import SagaCommand, SagaMachine

PARTITIONS = 4
MACHINE = SagaMachine(order_fulfillment())
LIMITS = {f"cust-{n}": Decimal("1000.00") for n in range(1, 9)}
T0 = 1_000_000
_partitioner = DefaultPartitioner()


def partition_of(key: str) -> int:
    """The partition a producer sends a record key to (murmur2, as Kafka's clients)."""
    every = list(range(PARTITIONS))
    return int(_partitioner(key.encode(), every, every))


class PartitionedPayments:
    """The payments service's table split by partition, one handler each."""

    def __init__(self) -> None:
        self.stores: list[dict[bytes, Any]] = [{} for _ in range(PARTITIONS)]
        self.handlers = [
            ParticipantHandler(
                PaymentRules(),
                {"entities": Prefixed(store, b"e/"), "records": Prefixed(store, b"r/")},
            )
            for store in self.stores
        ]

    def send(self, key: str, command: Command) -> dict[str, Any] | None:
        """Process a command in its record key's partition; the answer's data."""
        event = self.handlers[partition_of(key)].handle(command, now_ms=T0).event
        return None if event is None else dict(event.data)

    def seed(self, limits: dict[str, Decimal]) -> None:
        for key, data in account_seeds(limits):
            self.send(key, Command(f"seed-{key}", "SeedAccounts", "seed-payments", data))

    def holders(self, table_key: bytes) -> list[int]:
        """The partitions whose store holds a key (of the entities or records space)."""
        return [p for p, store in enumerate(self.stores) if table_key in store]


def saga_command(command: SagaCommand) -> tuple[str, Command]:
    """A machine's payments command as the orchestrator sends it: (record key, envelope)."""
    envelope = Command(
        command.command_id, command.command_type, command.saga_id, dict(command.data)
    )
    return command.key, envelope


def charge_command(order_id: str, customer: str, amount: str) -> SagaCommand:
    """The saga's ProcessPayment for an order (the machine decides its key)."""
    order = {"customerId": customer, "totalAmount": amount, "items": []}
    t = MACHINE.start(order_id, order, "corr", T0)
    t = MACHINE.on_event(t.state, "InventoryReserved", t.commands[-1].command_id, T0 + 1)
    (command,) = t.commands
    return command


def refund_command(order_id: str, customer: str, amount: str) -> SagaCommand:
    """The saga's RefundPayment after shipping failed for that order."""
    order = {"customerId": customer, "totalAmount": amount, "items": []}
    t = MACHINE.start(order_id, order, "corr", T0)
    t = MACHINE.on_event(t.state, "InventoryReserved", t.commands[-1].command_id, T0 + 1)
    t = MACHINE.on_event(t.state, "PaymentProcessed", t.commands[-1].command_id, T0 + 2)
    t = MACHINE.on_event(t.state, "ShipmentFailed", t.commands[-1].command_id, T0 + 3)
    (command,) = t.commands
    assert command.command_type == "RefundPayment"
    return command


def test_seeds_write_each_account_only_in_its_customers_partition() -> None:
    payments = PartitionedPayments()
    payments.seed(LIMITS)
    for customer in LIMITS:
        assert payments.holders(b"e/" + account_key(customer)) == [partition_of(customer)]
    assert len({partition_of(c) for c in LIMITS}) > 1  # the customers do spread out


orders = st.lists(
    st.tuples(
        st.sampled_from(sorted(LIMITS)),
        st.integers(1, 500).map(lambda cents: f"{cents // 100}.{cents % 100:02d}"),
        st.booleans(),  # refunded (shipping failed)
    ),
    min_size=1,
    max_size=20,
)


@settings(max_examples=100, deadline=None)
@given(orders)
def test_charges_and_refunds_stay_in_the_customers_partition(course: Any) -> None:
    payments = PartitionedPayments()
    payments.seed(LIMITS)
    owed: dict[str, Decimal] = dict.fromkeys(LIMITS, Decimal(0))
    for n, (customer, amount, refunded) in enumerate(course):
        order_id = f"order-{n}"
        charged = payments.send(*saga_command(charge_command(order_id, customer, amount)))
        assert charged == {"customerId": customer, "amount": amount}
        owed[customer] += Decimal(amount)
        if refunded:
            answer = payments.send(*saga_command(refund_command(order_id, customer, amount)))
            # the refund found the charge: it was processed in the same partition
            assert answer == {"customerId": customer, "amount": amount}
            owed[customer] -= Decimal(amount)
        home = [partition_of(customer)]
        assert payments.holders(b"r/" + PAYMENT + order_id.encode()) == home
    for customer, balance in owed.items():
        (home,) = payments.holders(b"e/" + account_key(customer))
        assert home == partition_of(customer)
        account = unwrap(payments.stores[home][b"e/" + account_key(customer)])
        assert Decimal(account["balance"]) == balance


def test_keyed_by_the_order_instead_the_state_would_split() -> None:
    """What the keying prevents: an order-keyed charge is processed in a partition that
    does not hold the customer's account."""
    payments = PartitionedPayments()
    payments.seed(LIMITS)
    order_id = next(
        f"order-{n}" for n in range(100) if partition_of(f"order-{n}") != partition_of("cust-1")
    )
    _, envelope = saga_command(charge_command(order_id, "cust-1", "5.00"))
    answer = payments.send(order_id, envelope)
    assert answer is not None and answer["reason"] == "unknown customer account"
