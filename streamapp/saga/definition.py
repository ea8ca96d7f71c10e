"""Saga definitions: ordered steps, each a command with the events that settle it (pure).

A definition is data; :mod:`streamapp.saga.machine` interprets it. The order saga is
declared at the bottom of this module.

Keying. A participant keeps the state of an entity (a customer's account) in the
partition of the records that change it (Faust writes a table change to the changelog
partition of the record being processed). So a step names the saga data field whose
value keys its commands (``key_field``): the forward command and its compensation carry
the same key, land in that entity's partition, and find there what the other wrote
(RefundPayment finds the charge of ProcessPayment). Without one, commands are keyed by
the saga id. Participants' answers are always keyed by the saga id.

Fan-out. A command that changes several entities (an order's stock of several skus)
would write to several partitions' state from one; a fan-out step (``FanOut``) sends one
command per entity instead: the saga data's item list grouped by an item field, each
group a *branch* keyed by its value and carrying only its items. The step succeeds when
every branch has, and fails on the first failure; see :mod:`streamapp.saga.machine`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from streamapp import topics


@dataclass(frozen=True)
class Compensation:
    """How a completed step is undone: a command, and the events that confirm it."""

    command: str
    confirmed_by: frozenset[str]
    failed_by: frozenset[str] = frozenset()


@dataclass(frozen=True)
class FanOut:
    """Split a step's command per group of ``data[items]`` by ``item[group_by]``."""

    group_by: str
    items: str = "items"

    def branches(
        self, saga_id: str, data: Mapping[str, Any]
    ) -> tuple[tuple[str, dict[str, Any]], ...]:
        """(record key, command data) per branch, in key order: the data with only the
        group's items. Data without a well-formed item list is one branch keyed by the
        saga id carrying the data as it is (the receiver rejects it, as it would
        without fan-out)."""
        items = data.get(self.items)
        groups: dict[str, list[Any]] = {}
        if isinstance(items, list):
            for item in items:
                value = item.get(self.group_by) if isinstance(item, dict) else None
                if not isinstance(value, str) or not value:
                    groups = {}
                    break
                groups.setdefault(value, []).append(item)
        if not groups:
            return ((saga_id, dict(data)),)
        return tuple((key, {**data, self.items: groups[key]}) for key in sorted(groups))


@dataclass(frozen=True)
class Step:
    """One forward step: the command to send, where, and which events settle it.

    ``timeout_ms`` None: the step never times out (a command to the saga's own service,
    whose outcome the saga must learn rather than guess: the order may already be
    confirmed); it is re-sent on its deadline instead, with the same id, until answered
    (see :meth:`SagaDefinition.resend_after`).
    ``with_data``: whether the command carries the saga data (the order).
    ``key_field``: the saga data field whose value is the record key of the step's
    commands, forward and compensation (see the module docstring); None: the saga id.
    ``fan_out``: one command per branch (see the module docstring), keyed by the
    branch; excludes ``key_field`` and needs a timeout (a branch may never answer)."""

    name: str
    command: str
    topic: str
    succeeded_by: frozenset[str]
    failed_by: frozenset[str]
    timeout_ms: int | None
    compensation: Compensation | None = None
    with_data: bool = True
    key_field: str | None = None
    fan_out: FanOut | None = None

    def __post_init__(self) -> None:
        if self.succeeded_by & self.failed_by:
            raise ValueError(f"step {self.name}: an event cannot mean success and failure")
        if self.timeout_ms is not None and self.timeout_ms <= 0:
            raise ValueError(f"step {self.name}: timeout_ms must be positive")
        if self.key_field is not None and not self.with_data:
            # The command would not carry the value it is keyed by.
            raise ValueError(f"step {self.name}: a key_field needs with_data")
        if self.fan_out is not None and (
            self.key_field is not None or self.timeout_ms is None or not self.with_data
        ):
            raise ValueError(f"step {self.name}: a fan-out needs a timeout and data, no key_field")

    def record_key(self, saga_id: str, data: Mapping[str, Any]) -> str:
        """The record key of this step's commands for a saga with `data`: the value of
        ``key_field`` (a non-empty string), else the saga id. The data never changes
        during a saga, so its forward command, compensation and re-sends share the key;
        a saga without the field (the receiver rejects its command) keeps the saga id."""
        if self.key_field is None:
            return saga_id
        value = data.get(self.key_field)
        return value if isinstance(value, str) and value else saga_id


@dataclass(frozen=True)
class EndCommand:
    """A command the saga sends when it ends (CommitInventory / CancelOrder).

    With ``confirmed_by`` events, it is re-sent (same id) on its deadline until one of
    them answers it: a dead-lettered end command would otherwise leave a finished saga's
    effect undone (stock reserved, an order pending). Empty: fire-and-forget."""

    command: str
    topic: str
    confirmed_by: frozenset[str] = frozenset()
    #: The fan-out step whose branches it follows: one command per branch, keyed and
    #: carrying data as the branch's (CommitInventory per sku), each confirmed alone.
    per_branch_of: str | None = None


@dataclass(frozen=True)
class SagaDefinition:
    """Steps run in order; on failure, timeout or cancel the completed ones are
    compensated in reverse order. Compensations are retried until confirmed, at most
    ``max_compensation_attempts`` times each, then the saga is FAILED.

    Forward steps without a timeout and confirmed end commands are re-sent until
    answered, without limit (giving up could only leave the order undecided or the
    stock reserved); the interval starts at ``compensation_timeout_ms`` and doubles up
    to ``resend_cap_ms`` (default 16 times the start), so a long outage costs a few
    records per saga, not a flood.

    ``retention_ms``: how long a saga's working state stays once it has settled
    (terminal, nothing awaited); then it is deleted. None: kept for ever."""

    saga_type: str
    steps: tuple[Step, ...]
    on_completed: EndCommand | None = None
    on_compensated: EndCommand | None = None
    compensation_timeout_ms: int = 10_000
    max_compensation_attempts: int = 5
    resend_cap_ms: int | None = None
    retention_ms: int | None = None
    step_index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.steps:
            raise ValueError("a saga needs at least one step")
        if self.compensation_timeout_ms <= 0:
            raise ValueError("compensation_timeout_ms must be positive")
        if self.resend_cap_ms is not None and self.resend_cap_ms < self.compensation_timeout_ms:
            raise ValueError("resend_cap_ms must be at least compensation_timeout_ms")
        if self.retention_ms is not None and self.retention_ms <= 0:
            raise ValueError("retention_ms must be positive")
        names = [s.name for s in self.steps]
        if len(set(names)) != len(names):
            raise ValueError(f"step names must be unique: {names}")
        object.__setattr__(self, "step_index", {n: i for i, n in enumerate(names)})
        for end in (self.on_completed, self.on_compensated):
            following = end.per_branch_of if end is not None else None
            if end is not None and following is not None and self.step(following).fan_out is None:
                raise ValueError(f"{end.command}: {end.per_branch_of} is not a fan-out step")

    def step(self, name: str) -> Step:
        return self.steps[self.step_index[name]]

    def resend_after(self, sends: int) -> int:
        """The wait after the `sends`-th send of a re-sent command: doubling, capped."""
        cap = self.resend_cap_ms or 16 * self.compensation_timeout_ms
        return min(self.compensation_timeout_ms << min(max(sends - 1, 0), 40), cap)

    def end_command(self, command: str) -> EndCommand | None:
        """The end command (on_completed or on_compensated) named `command`."""
        for end in (self.on_completed, self.on_compensated):
            if end is not None and end.command == command:
                return end
        return None


def participant_step(
    service: str,
    command: str,
    succeeded: str,
    failed: str,
    undo: str,
    undone: str,
    timeout_ms: int,
    key_field: str | None = None,
    fan_out: FanOut | None = None,
) -> Step:
    """A step served by a participant on ``<service>.commands``, undone by `undo`; its
    commands keyed by the saga data's `key_field` (None: by the saga id), or fanned out."""
    return Step(
        name=command,
        command=command,
        topic=topics.participant_commands(service).name,
        succeeded_by=frozenset({succeeded}),
        failed_by=frozenset({failed}),
        timeout_ms=timeout_ms,
        compensation=Compensation(undo, frozenset({undone})),
        key_field=key_field,
        fan_out=fan_out,
    )


def order_fulfillment(
    step_timeout_ms: int = 30_000,
    compensation_timeout_ms: int = 10_000,
    max_compensation_attempts: int = 5,
    retention_ms: int | None = None,
) -> SagaDefinition:
    """ReserveInventory -> ProcessPayment -> ScheduleShipment -> ConfirmOrder.

    ReserveInventory fans out: one command per sku of the order, keyed by the sku (the
    stock of a sku lives in its partition), as do its ReleaseInventory and the
    CommitInventory at the end. Payments commands are keyed by the order's customerId,
    shipping's by the order id.

    Confirming the order is the last step, not a fire-and-forget end: a client's
    CancelOrder that reaches the order first makes ConfirmOrder fail (the order is no
    longer PENDING), and the OrderCancelled event then compensates the saga. So the
    order's status and the saga's outcome always agree. Completion commits the
    reserved stock (CommitInventory); compensation cancels the order (CancelOrder, which
    any OrderCancelled of the order confirms: a client's cancel may have come first)."""
    timeout = step_timeout_ms
    return SagaDefinition(
        saga_type="OrderFulfillment",
        steps=(
            participant_step(
                "inventory",
                "ReserveInventory",
                "InventoryReserved",
                "InventoryReservationFailed",
                "ReleaseInventory",
                "InventoryReleased",
                timeout,
                fan_out=FanOut(group_by="sku"),  # stock lives in its sku's partition
            ),
            participant_step(
                "payments",
                "ProcessPayment",
                "PaymentProcessed",
                "PaymentFailed",
                "RefundPayment",
                "PaymentRefunded",
                timeout,
                key_field="customerId",  # an account lives in its customer's partition
            ),
            participant_step(
                "shipping",
                "ScheduleShipment",
                "ShipmentScheduled",
                "ShipmentFailed",
                "CancelShipment",
                "ShipmentCancelled",
                timeout,
            ),
            Step(
                name="ConfirmOrder",
                command="ConfirmOrder",
                topic=topics.ORDERS_COMMANDS.name,
                succeeded_by=frozenset({"OrderConfirmed"}),
                failed_by=frozenset(),
                timeout_ms=None,
                with_data=False,
            ),
        ),
        on_completed=EndCommand(
            "CommitInventory",
            topics.participant_commands("inventory").name,
            frozenset({"InventoryCommitted"}),
            per_branch_of="ReserveInventory",
        ),
        on_compensated=EndCommand(
            "CancelOrder", topics.ORDERS_COMMANDS.name, frozenset({"OrderCancelled"})
        ),
        compensation_timeout_ms=compensation_timeout_ms,
        max_compensation_attempts=max_compensation_attempts,
        retention_ms=retention_ms,
    )
