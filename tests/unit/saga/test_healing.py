"""Sagas heal themselves: ConfirmOrder and the end commands are re-sent until answered;
settled sagas expire. Late, duplicate and confirming answers never change the outcome."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from streamapp.saga.definition import order_fulfillment
from streamapp.saga.machine import (
    AWAITING,
    COMPENSATED,
    COMPLETED,
    CONFIRMED,
    FAILED,
    TERMINAL,
    SagaMachine,
    SagaState,
    Transition,
)

RESEND, RETENTION = 500, 60_000
DEFINITION = order_fulfillment(
    step_timeout_ms=1000,
    compensation_timeout_ms=RESEND,
    max_compensation_attempts=3,
    retention_ms=RETENTION,
)
MACHINE = SagaMachine(DEFINITION)
T0 = 1_000_000


def reply(t: Transition, event_type: str, at: int = T0 + 10) -> Transition:
    return MACHINE.on_event(t.state, event_type, t.commands[-1].command_id, at)


def confirming() -> Transition:
    t = MACHINE.start("order-1", {"customerId": "c"}, "corr-1", T0)
    return reply(reply(reply(t, "InventoryReserved"), "PaymentProcessed"), "ShipmentScheduled")


def completed() -> Transition:
    return reply(confirming(), "OrderConfirmed")


def compensated() -> Transition:
    t = MACHINE.start("order-1", {"customerId": "c"}, "corr-1", T0)
    return reply(reply(reply(t, "InventoryReserved"), "PaymentFailed"), "InventoryReleased")


def names(t: Transition) -> list[str]:
    return [c.command_type for c in t.commands]


def test_resend_interval_doubles_up_to_its_cap() -> None:
    waits = [DEFINITION.resend_after(n) for n in range(1, 9)]
    assert waits == [500, 1000, 2000, 4000, 8000, 8000, 8000, 8000]
    assert DEFINITION.resend_after(10_000) == 8000  # no overflow, no limit


def test_confirm_order_is_sent_again_until_the_order_answers() -> None:
    t = confirming()
    first = t.commands[0]
    assert first.command_type == "ConfirmOrder"
    deadline = t.state.next_deadline()
    assert deadline == T0 + 10 + RESEND
    assert not MACHINE.on_timeout(t.state, deadline - 1).commands  # not due
    sent = []
    for _ in range(12):  # unlimited: it never gives up and never compensates
        assert deadline is not None
        t = MACHINE.on_timeout(t.state, deadline)
        assert t.commands == (first,) and t.state.step("ConfirmOrder").status == "RUNNING"
        assert not t.events
        sent.append(deadline)
        deadline = t.state.next_deadline()
    assert sent[-1] - sent[-2] == 8000
    assert t.state.step("ConfirmOrder").resends == 12
    assert MACHINE.outstanding(t.state) == (first,)
    done = MACHINE.on_event(t.state, "OrderConfirmed", first.command_id, deadline or 0)
    assert done.state.state == COMPLETED and names(done) == ["CommitInventory"]


def test_commit_inventory_is_sent_again_until_confirmed() -> None:
    t = completed()
    commit = t.commands[0]
    end = t.state.end
    # no items: one branch keyed by the saga id (per-sku commits: test_fan_out)
    assert end is not None and end.status == AWAITING and commit.key == "order-1"
    assert MACHINE.outstanding(t.state) == (commit,)
    assert t.state.expires_ms is None  # not settled: the stock is still reserved
    again = MACHINE.on_timeout(t.state, T0 + 10 + RESEND)
    assert again.commands == (commit,) and again.state.state == COMPLETED
    assert again.state.end is not None and again.state.end.sends == 2
    assert again.state.next_deadline() == T0 + 10 + RESEND + 1000
    done = MACHINE.on_event(again.state, "InventoryCommitted", commit.command_id, T0 + 2000)
    assert done.state.end is not None and done.state.end.status == CONFIRMED
    assert not done.commands and not done.events and MACHINE.outstanding(done.state) == ()
    assert done.state.expires_ms == T0 + 2000 + RETENTION
    # a later tick before the expiry sends nothing
    assert MACHINE.on_timeout(done.state, T0 + 5000) == Transition(done.state)


def test_an_unconfirmed_cancel_order_is_sent_again_and_any_order_cancel_confirms_it() -> None:
    t = compensated()
    assert names(t) == ["CancelOrder"]
    again = MACHINE.on_timeout(t.state, T0 + 10 + RESEND)
    assert again.commands == t.commands
    # the client's own cancel won the race (the saga's CancelOrder is rejected): that
    # cancel confirms it too
    done = MACHINE.cancel(again.state, "client", T0 + 900)
    assert done.state.end is not None and done.state.end.status == CONFIRMED
    assert done.state.state == COMPENSATED and done.state.reason == t.state.reason
    assert not done.commands and done.state.expires_ms == T0 + 900 + RETENTION


def test_a_settled_saga_expires_after_the_retention() -> None:
    t = compensated()
    t = MACHINE.cancel(t.state, "own cancel confirmed", T0 + 20)
    expires = t.state.expires_ms
    assert expires == T0 + 20 + RETENTION and t.state.next_deadline() is None
    assert not MACHINE.on_timeout(t.state, expires - 1).expired
    assert MACHINE.on_timeout(t.state, expires).expired


def test_a_failed_saga_never_expires() -> None:
    t = MACHINE.start("order-1", {"customerId": "c"}, "corr-1", T0)
    t = reply(reply(t, "InventoryReserved"), "PaymentFailed")
    for at in (T0 + 600, T0 + 1200, T0 + 1800):
        t = MACHINE.on_timeout(t.state, at)
    assert t.state.state == FAILED
    assert t.state.expires_ms is None and t.state.next_deadline() is None
    assert not MACHINE.on_timeout(t.state, T0 + 10 * RETENTION).expired


def test_a_late_success_delays_the_expiry_until_it_is_undone() -> None:
    t = MACHINE.start("order-1", {"customerId": "c"}, "corr-1", T0)
    reserve = t.commands[0]
    t = MACHINE.on_timeout(t.state, T0 + 1000)  # ReserveInventory timed out
    assert t.state.state == COMPENSATED and names(t) == ["CancelOrder"]
    t = MACHINE.cancel(t.state, "own", T0 + 1100)
    assert t.state.expires_ms == T0 + 1100 + RETENTION
    late = MACHINE.on_event(t.state, "InventoryReserved", reserve.command_id, T0 + 1200)
    assert names(late) == ["ReleaseInventory"] and late.state.expires_ms is None
    undone = MACHINE.on_event(
        late.state, "InventoryReleased", late.commands[0].command_id, T0 + 1300
    )
    assert undone.state.state == COMPENSATED and undone.state.expires_ms == T0 + 1300 + RETENTION


def test_a_saga_stored_before_end_commands_were_tracked_still_loads() -> None:
    t = completed()
    doc = t.state.to_dict()
    del doc["end"], doc["expiresMs"]
    for step in doc["steps"]:
        del step["resends"]
    legacy = SagaState.from_dict(doc)
    assert legacy.end is None and legacy.expires_ms is None and legacy.state == COMPLETED
    assert names(Transition(legacy, MACHINE.outstanding(legacy))) == ["CommitInventory"]
    assert SagaState.from_dict(t.state.to_dict()) == t.state


# -- properties: after the end, nothing changes the outcome --------------------------------
EVENTS = (
    "InventoryReserved",
    "InventoryReservationFailed",
    "InventoryReleased",
    "InventoryCommitted",
    "PaymentProcessed",
    "PaymentFailed",
    "PaymentRefunded",
    "ShipmentScheduled",
    "ShipmentFailed",
    "ShipmentCancelled",
    "OrderConfirmed",
    "OrderCancelled",
)


def _ids(state: SagaState) -> list[str]:
    ids = [i for s in state.steps for i in (s.command_id, s.compensation_id) if i]
    if state.end is not None and state.end.command_id:
        ids.append(state.end.command_id)
    return ids


inputs = st.lists(
    st.one_of(
        st.tuples(st.just("event"), st.sampled_from(EVENTS), st.integers(0, 12)),
        st.tuples(st.just("timeout"), st.integers(0, 20_000)),
        st.tuples(st.just("cancel")),
    ),
    max_size=25,
)


@settings(max_examples=300, deadline=None)
@given(ending=st.sampled_from(["completed", "compensated", "timed-out"]), steps=inputs)
def test_no_late_duplicate_or_confirming_input_changes_the_outcome(
    ending: str, steps: list[tuple[object, ...]]
) -> None:
    if ending == "completed":
        t = completed()
    elif ending == "compensated":
        t = compensated()
    else:
        t = MACHINE.on_timeout(MACHINE.start("order-1", {}, "corr-1", T0).state, T0 + 1000)
    end = t.state.state
    assert end in (COMPLETED, COMPENSATED)
    state, now = t.state, T0 + 2000
    end_id = state.end.command_id if state.end is not None else None
    confirmed = False
    for step in steps:
        if step[0] == "event":
            ids = [*_ids(state), "stranger"]
            kind, pick = str(step[1]), int(step[2])  # type: ignore[call-overload]
            t = MACHINE.on_event(state, kind, ids[pick % len(ids)], now)
        elif step[0] == "timeout":
            now += int(step[1])  # type: ignore[call-overload]
            t = MACHINE.on_timeout(state, now)
            if t.expired:
                assert state.settled() and state.expires_ms is not None
                assert state.expires_ms <= now
                break
        else:
            t = MACHINE.cancel(state, "client", now)
        new = t.state
        assert new.state in TERMINAL
        # the outcome stays; COMPENSATED may turn FAILED only when a late success's
        # compensation fails for good (announced by SagaFailed)
        if new.state != state.state:
            assert (state.state, new.state) == (COMPENSATED, FAILED)
            assert [e.event_type for e in t.events] == ["SagaFailed"]
        else:
            assert all(e.event_type == "SagaStepCompensated" for e in t.events)
        assert new.saga_id == state.saga_id and new.data == state.data
        # the end command keeps its id, and once confirmed it stays confirmed
        if new.end is not None and end_id is not None:
            assert new.end.command_id == end_id
        if confirmed:
            assert new.end is not None and new.end.status == CONFIRMED
        confirmed = new.end is not None and new.end.status == CONFIRMED
        # only the end command and compensations can be sent after the end
        assert set(names(t)) <= {"CommitInventory", "CancelOrder", "ReleaseInventory"} | {
            "RefundPayment",
            "CancelShipment",
        }
        if end == COMPLETED:
            assert "CancelOrder" not in names(t)
        state = new
        now += 1
    assert state.state == end or (end, state.state) == (COMPENSATED, FAILED)


def test_a_confirmation_never_revives_an_ended_saga() -> None:
    t = completed()
    confirmed = MACHINE.on_event(
        t.state, "InventoryCommitted", t.commands[0].command_id, T0 + 100
    ).state
    for kind in EVENTS:
        for command_id in _ids(confirmed):
            again = MACHINE.on_event(confirmed, kind, command_id, T0 + 200)
            assert again.state.state == COMPLETED and not again.commands
            assert again.state.end == confirmed.end
    stale = replace(confirmed, updated_ms=confirmed.updated_ms)
    assert MACHINE.cancel(stale, "too late", T0 + 300).state == stale
