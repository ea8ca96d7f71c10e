"""The saga state machine: (state, event | timeout | cancel) -> (state, commands) (pure).

The orchestrator stores the returned state *before* it sends the returned commands;
command ids are derived from (saga, step, forward|compensate), so a re-send after a
crash is the same command and participants deduplicate it.

Late replies: a step that timed out or was running when the client cancelled keeps
``outcome_pending``. If it later succeeds, its compensation is sent then (the saga's
terminal state does not change); if it later fails, nothing is left to undo.

Fan-out steps (``Step.fan_out``, one command per branch: ReserveInventory per sku)
succeed when every branch has and fail on the first failure. Compensation then undoes
exactly the branches that succeeded; a branch whose answer is still unknown (the step
failed, timed out or was cancelled meanwhile) is undone when its success arrives, like a
late success of a single step. Undoing it before its answer could race the command it
undoes: a release processed before its reservation (e.g. the reservation waiting in a
retry topic) would release nothing and leave the units reserved for good.

Nothing is fire-and-forget: a step without a timeout (ConfirmOrder) and the end command
(CommitInventory / CancelOrder) are re-sent on their deadlines until answered, so a
command dead-lettered by its receiver does not leave the saga waiting for ever or its
effect undone. Once a saga has settled (terminal, nothing awaited) it gets an expiry
deadline; on it the orchestrator deletes the saga's working state.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from streamapp.messages import derived_id
from streamapp.saga.definition import EndCommand, SagaDefinition, Step

# saga states (the contract's)
STARTED, EXECUTING, COMPENSATING = "STARTED", "EXECUTING", "COMPENSATING"
COMPLETED, COMPENSATED, FAILED = "COMPLETED", "COMPENSATED", "FAILED"
TERMINAL = frozenset({COMPLETED, COMPENSATED, FAILED})

#: The saga event that ends a saga -> the state it ends in (sagas.events).
TERMINAL_EVENTS = {"SagaCompleted": COMPLETED, "SagaCompensated": COMPENSATED, "SagaFailed": FAILED}

# step statuses
PENDING, RUNNING, SUCCEEDED = "PENDING", "RUNNING", "SUCCEEDED"
STEP_FAILED, TIMED_OUT, ABANDONED = "FAILED", "TIMED_OUT", "ABANDONED"
STEP_COMPENSATING, STEP_COMPENSATED = "COMPENSATING", "COMPENSATED"
COMPENSATION_FAILED = "COMPENSATION_FAILED"

# end command statuses
AWAITING, CONFIRMED = "AWAITING", "CONFIRMED"


@dataclass(frozen=True)
class BranchState:
    """One branch of a fan-out step: its record key (the sku) and its status: RUNNING
    (no answer yet), SUCCEEDED, FAILED, COMPENSATING, COMPENSATED, COMPENSATION_FAILED.
    Its command ids are derived from the key (``branch_id``)."""

    key: str
    status: str = RUNNING

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "status": self.status}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> BranchState:
        return cls(str(doc["key"]), str(doc["status"]))


def branch_id(saga_id: str, name: str, kind: str, key: str) -> str:
    """The id of a branch's command: `name` a step (kind forward|compensate) or an end
    command (kind "end")."""
    return derived_id(saga_id, name, kind, key)


@dataclass(frozen=True)
class StepState:
    name: str
    status: str = PENDING
    command_id: str | None = None
    compensation_id: str | None = None
    attempts: int = 0  # compensation attempts made
    deadline_ms: int | None = None
    outcome_pending: bool = False  # a forward command whose outcome may still arrive
    resends: int = 0  # re-sends of the forward command (steps without a timeout)
    # When the command now awaited was first sent: the forward command while RUNNING, the
    # compensation while COMPENSATING (streamapp_saga_step_seconds). None: before it.
    sent_ms: int | None = None
    branches: tuple[BranchState, ...] = ()  # a fan-out step's, once it runs

    def branch(self, key: str) -> BranchState:
        return next(b for b in self.branches if b.key == key)

    def with_branch(self, new: BranchState) -> StepState:
        return replace(self, branches=tuple(new if b.key == new.key else b for b in self.branches))

    def keys(self, status: str) -> tuple[str, ...]:
        return tuple(b.key for b in self.branches if b.status == status)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "commandId": self.command_id,
            "compensationId": self.compensation_id,
            "attempts": self.attempts,
            "deadlineMs": self.deadline_ms,
            "outcomePending": self.outcome_pending,
            "resends": self.resends,
            "sentMs": self.sent_ms,
            "branches": [b.to_dict() for b in self.branches],
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> StepState:
        return cls(
            doc["name"],
            doc["status"],
            doc.get("commandId"),
            doc.get("compensationId"),
            int(doc.get("attempts", 0)),
            doc.get("deadlineMs"),
            bool(doc.get("outcomePending")),
            int(doc.get("resends", 0)),
            doc.get("sentMs"),
            tuple(BranchState.from_dict(b) for b in doc.get("branches", ())),
        )


@dataclass(frozen=True)
class EndState:
    """The saga's end command: AWAITING its confirmation (re-sent on the deadline) or
    CONFIRMED. CONFIRMED without a command id: the effect happened without it (the
    order was cancelled by its client, so the saga's CancelOrder is not needed)."""

    command: str
    status: str = AWAITING
    command_id: str | None = None
    sends: int = 0
    deadline_ms: int | None = None
    confirmed: tuple[str, ...] = ()  # a per-branch end command: the branches confirmed

    def to_dict(self) -> dict[str, Any]:
        return {
            "command": self.command,
            "status": self.status,
            "commandId": self.command_id,
            "sends": self.sends,
            "deadlineMs": self.deadline_ms,
            "confirmed": list(self.confirmed),
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> EndState:
        return cls(
            doc["command"],
            doc["status"],
            doc.get("commandId"),
            int(doc.get("sends", 0)),
            doc.get("deadlineMs"),
            tuple(str(k) for k in doc.get("confirmed", ())),
        )


@dataclass(frozen=True)
class SagaState:
    saga_id: str
    saga_type: str
    state: str
    current_step: str | None
    steps: tuple[StepState, ...]
    data: Mapping[str, Any]
    correlation_id: str
    updated_ms: int
    reason: str | None = None
    # None in records written before end commands were tracked (then: fire-and-forget)
    end: EndState | None = None
    expires_ms: int | None = None  # settled: the working state is deleted at this time

    def step(self, name: str) -> StepState:
        return next(s for s in self.steps if s.name == name)

    def with_step(self, new: StepState, **changes: Any) -> SagaState:
        steps = tuple(new if s.name == new.name else s for s in self.steps)
        return replace(self, steps=steps, **changes)

    def settled(self) -> bool:
        """Ended and awaiting nothing (FAILED is not: it is the operator's to resolve)."""
        return (
            self.state in (COMPLETED, COMPENSATED)
            and all(s.deadline_ms is None for s in self.steps)
            and (self.end is None or self.end.status == CONFIRMED)
        )

    def next_deadline(self) -> int | None:
        """The earliest deadline of a running step, a compensation or the end command
        (for the timer; a settled saga's expiry is ``expires_ms``, scanned less often)."""
        deadlines = [s.deadline_ms for s in self.steps if s.deadline_ms is not None]
        if self.end is not None and self.end.deadline_ms is not None:
            deadlines.append(self.end.deadline_ms)
        return min(deadlines) if deadlines else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "sagaId": self.saga_id,
            "sagaType": self.saga_type,
            "state": self.state,
            "currentStep": self.current_step,
            "steps": [s.to_dict() for s in self.steps],
            "data": dict(self.data),
            "correlationId": self.correlation_id,
            "updatedMs": self.updated_ms,
            "reason": self.reason,
            "end": self.end.to_dict() if self.end is not None else None,
            "expiresMs": self.expires_ms,
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> SagaState:
        return cls(
            doc["sagaId"],
            doc["sagaType"],
            doc["state"],
            doc.get("currentStep"),
            tuple(StepState.from_dict(s) for s in doc["steps"]),
            doc.get("data", {}),
            doc["correlationId"],
            int(doc["updatedMs"]),
            doc.get("reason"),
            EndState.from_dict(doc["end"]) if doc.get("end") else None,
            doc.get("expiresMs"),
        )


@dataclass(frozen=True)
class SagaCommand:
    """A command for a participant (or the order) about a saga, and its record key: the
    step's (``Step.record_key``, e.g. the customer of a payment), else the saga id."""

    command_id: str
    command_type: str
    topic: str
    saga_id: str
    data: Mapping[str, Any]
    key: str


@dataclass(frozen=True)
class SagaEvent:
    """A saga lifecycle event for ``sagas.events``."""

    event_type: str
    data: Mapping[str, Any]


@dataclass(frozen=True)
class Transition:
    state: SagaState
    commands: tuple[SagaCommand, ...] = ()
    events: tuple[SagaEvent, ...] = ()
    expired: bool = False  # the settled saga's retention is over: delete its state


class SagaMachine:
    """Interprets one SagaDefinition."""

    def __init__(self, definition: SagaDefinition) -> None:
        self.definition = definition

    # -- entry points ----------------------------------------------------------------
    def start(
        self, saga_id: str, data: Mapping[str, Any], correlation_id: str, now_ms: int
    ) -> Transition:
        first = self.definition.steps[0]
        state = SagaState(
            saga_id,
            self.definition.saga_type,
            STARTED,
            first.name,
            tuple(StepState(s.name) for s in self.definition.steps),
            data,
            correlation_id,
            now_ms,
        )
        state, commands = self._run(state, first, now_ms)
        return Transition(state, commands, (SagaEvent("SagaStarted", {"data": dict(data)}),))

    def never_started(
        self, saga_id: str, reason: str, correlation_id: str, now_ms: int
    ) -> Transition:
        """The order was cancelled before its saga started (its OrderCreated is being
        retried): the saga ends COMPENSATED with nothing to undo, so a late start finds
        it ended instead of running for a cancelled order. The order is cancelled
        already, so the end command is confirmed without being sent."""
        end = self.definition.on_compensated
        state = SagaState(
            saga_id,
            self.definition.saga_type,
            COMPENSATED,
            None,
            tuple(StepState(s.name) for s in self.definition.steps),
            {},
            correlation_id,
            now_ms,
            reason,
            EndState(end.command, CONFIRMED) if end is not None else None,
        )
        transition = Transition(state, (), (SagaEvent("SagaCompensated", {"reason": reason}),))
        return self._settle(transition, now_ms)

    def on_event(
        self, state: SagaState, event_type: str, causation_id: str | None, now_ms: int
    ) -> Transition:
        """A participant's event. Events that answer no command of this saga are ignored."""
        return self._settle(self._on_event(state, event_type, causation_id, now_ms), now_ms)

    def _on_event(
        self, state: SagaState, event_type: str, causation_id: str | None, now_ms: int
    ) -> Transition:
        if causation_id is None:
            return Transition(state)
        for step in self.definition.steps:
            current = state.step(step.name)
            if step.fan_out is not None:
                if current.branches:
                    hit = self._on_branch_event(state, step, event_type, causation_id, now_ms)
                    if hit is not None:
                        return hit
                continue
            if causation_id == current.command_id:
                if event_type in step.succeeded_by:
                    return self._succeeded(state, step, now_ms)
                if event_type in step.failed_by:
                    return self._failed(state, step, event_type, now_ms)
            compensation = step.compensation
            if compensation is not None and causation_id == current.compensation_id:
                if event_type in compensation.confirmed_by:
                    return self._compensated(state, step, now_ms)
                if event_type in compensation.failed_by:
                    return Transition(state)  # retried when its deadline passes
        end = state.end
        if end is not None and end.status == AWAITING:
            definition = self.definition.end_command(end.command)
            if definition is None or event_type not in definition.confirmed_by:
                return Transition(state)
            if definition.per_branch_of is not None:
                return Transition(self._confirm_end_branch(state, definition, causation_id, now_ms))
            if causation_id == end.command_id:
                return Transition(self._confirm_end(state, now_ms))
        return Transition(state)

    def on_timeout(self, state: SagaState, now_ms: int) -> Transition:
        """Deadlines that have passed: a step times out (or, without a timeout, is sent
        again), a compensation or the end command is sent again, a settled saga expires."""
        if state.expires_ms is not None and state.expires_ms <= now_ms and state.settled():
            return Transition(state, expired=True)
        commands: list[SagaCommand] = []
        events: list[SagaEvent] = []
        for step in self.definition.steps:
            current = state.step(step.name)
            if current.deadline_ms is None or current.deadline_ms > now_ms:
                continue
            if current.status == RUNNING and state.state in (STARTED, EXECUTING):
                if step.timeout_ms is None and current.command_id is not None:
                    resends = current.resends + 1
                    again = replace(
                        current,
                        resends=resends,
                        deadline_ms=now_ms + self.definition.resend_after(resends + 1),
                    )
                    state = state.with_step(again, updated_ms=now_ms)
                    commands.append(self._forward_command(state, step, current.command_id))
                    continue
                timed_out = replace(
                    current, status=TIMED_OUT, deadline_ms=None, outcome_pending=True
                )
                state = state.with_step(timed_out, updated_ms=now_ms)
                done = self._begin_compensation(state, f"{step.name} timed out", now_ms)
                state = done.state
                commands += done.commands
                events += done.events
            elif current.status == STEP_COMPENSATING:
                retry = self._retry_compensation(state, step, current, now_ms)
                state = retry.state
                commands += retry.commands
                events += retry.events
        end = state.end
        if (
            end is not None
            and end.status == AWAITING
            and end.deadline_ms is not None
            and end.deadline_ms <= now_ms
        ):
            sends = end.sends + 1
            again_end = replace(
                end, sends=sends, deadline_ms=now_ms + self.definition.resend_after(sends)
            )
            state = replace(state, end=again_end, updated_ms=now_ms)
            commands += self._end_sends(state)
        return self._settle(Transition(state, tuple(commands), tuple(events)), now_ms)

    def cancel(self, state: SagaState, reason: str, now_ms: int) -> Transition:
        """The order was cancelled (OrderCancelled: a client's CancelOrder, or the
        saga's own). That confirms the saga's CancelOrder, whether sent yet or not: a
        client's cancel makes the saga's own one redundant (it would be rejected).

        A running saga compensates what is done; the running step's late outcome is
        handled when it arrives. A terminal or compensating saga is left as it is."""
        state = self._order_cancelled(state, now_ms)
        if state.state not in (STARTED, EXECUTING):
            return self._settle(Transition(state), now_ms)
        for current in state.steps:
            if current.status == RUNNING:
                abandoned = replace(
                    current, status=ABANDONED, deadline_ms=None, outcome_pending=True
                )
                state = state.with_step(abandoned)
        transition = self._begin_compensation(replace(state, updated_ms=now_ms), reason, now_ms)
        return self._settle(transition, now_ms)

    def outstanding(self, state: SagaState) -> tuple[SagaCommand, ...]:
        """Every command the state says was sent and may still be needed: the running
        steps, the compensations awaiting confirmation, the unconfirmed end command.

        After a crash the orchestrator re-sends them when the events it had already
        applied are redelivered; the ids are the same, so receivers deduplicate."""
        commands: list[SagaCommand] = []
        for step in self.definition.steps:
            current = state.step(step.name)
            if step.fan_out is not None:
                if current.status == RUNNING:
                    commands += self._branch_commands(state, step, current.keys(RUNNING))
                elif current.status == STEP_COMPENSATING:
                    keys = current.keys(STEP_COMPENSATING)
                    commands += self._branch_commands(state, step, keys, compensate=True)
            elif current.status == RUNNING and current.command_id is not None:
                commands.append(self._forward_command(state, step, current.command_id))
            elif (
                current.status == STEP_COMPENSATING
                and current.compensation_id is not None
                and step.compensation is not None
            ):
                commands.append(
                    self._step_command(
                        state, step, current.compensation_id, step.compensation.command
                    )
                )
        if state.end is not None:
            if state.end.status == AWAITING:
                commands += self._end_sends(state)
        elif state.state == COMPLETED:  # a record from before end commands were tracked
            commands += self._end_sends(state, self.definition.on_completed)
        elif state.state == COMPENSATED:
            commands += self._end_sends(state, self.definition.on_compensated)
        return tuple(commands)

    # -- settling and expiry -------------------------------------------------------------
    def _settle(self, transition: Transition, now_ms: int) -> Transition:
        """A saga that has just settled expires `retention_ms` later; one that is not
        settled (any more) does not expire."""
        state, retention = transition.state, self.definition.retention_ms
        if retention is None:
            return transition
        if state.settled():
            if state.expires_ms is None:
                state = replace(state, expires_ms=now_ms + retention)
        elif state.expires_ms is not None:
            state = replace(state, expires_ms=None)
        return replace(transition, state=state)

    # -- forward -----------------------------------------------------------------------
    def _run(
        self, state: SagaState, step: Step, now_ms: int
    ) -> tuple[SagaState, tuple[SagaCommand, ...]]:
        wait = step.timeout_ms if step.timeout_ms is not None else self.definition.resend_after(1)
        running = replace(
            state.step(step.name), status=RUNNING, deadline_ms=now_ms + wait, sent_ms=now_ms
        )
        if step.fan_out is not None:
            keys = tuple(key for key, _ in step.fan_out.branches(state.saga_id, state.data))
            running = replace(running, branches=tuple(BranchState(key) for key in keys))
            state = state.with_step(running, current_step=step.name, updated_ms=now_ms)
            return state, self._branch_commands(state, step, keys)
        command_id = derived_id(state.saga_id, step.name, "forward")
        running = replace(running, command_id=command_id)
        return state.with_step(running, current_step=step.name, updated_ms=now_ms), (
            self._forward_command(state, step, command_id),
        )

    # -- fan-out branches ----------------------------------------------------------------
    @staticmethod
    def _branch_commands(
        state: SagaState, step: Step, keys: tuple[str, ...], compensate: bool = False
    ) -> tuple[SagaCommand, ...]:
        """The forward commands (or compensations) of a fan-out step's branches `keys`:
        each keyed by its branch and carrying only its items."""
        assert step.fan_out is not None
        data = dict(step.fan_out.branches(state.saga_id, state.data))
        if compensate:
            assert step.compensation is not None
            kind, command_type = "compensate", step.compensation.command
        else:
            kind, command_type = "forward", step.command
        return tuple(
            SagaCommand(
                branch_id(state.saga_id, step.name, kind, key),
                command_type,
                step.topic,
                state.saga_id,
                data.get(key, {}),
                key,
            )
            for key in keys
        )

    def _on_branch_event(
        self, state: SagaState, step: Step, event_type: str, causation_id: str, now_ms: int
    ) -> Transition | None:
        """An answer to a branch's command of `step`; None: it answers none of them."""
        current = state.step(step.name)
        for branch in current.branches:
            if causation_id == branch_id(state.saga_id, step.name, "forward", branch.key):
                if event_type in step.succeeded_by:
                    return self._branch_succeeded(state, step, branch, now_ms)
                if event_type in step.failed_by:
                    return self._branch_failed(state, step, branch, event_type, now_ms)
                return Transition(state)
            if causation_id == branch_id(state.saga_id, step.name, "compensate", branch.key):
                compensation = step.compensation
                if compensation is not None and event_type in compensation.confirmed_by:
                    return self._branch_compensated(state, step, branch, now_ms)
                return Transition(state)  # a failed compensation: retried on the deadline
        return None

    def _branch_succeeded(
        self, state: SagaState, step: Step, branch: BranchState, now_ms: int
    ) -> Transition:
        if branch.status != RUNNING:
            return Transition(state)  # a duplicate answer
        current = state.step(step.name).with_branch(replace(branch, status=SUCCEEDED))
        state = state.with_step(current, updated_ms=now_ms)
        if current.status == RUNNING and state.state in (STARTED, EXECUTING):
            if all(b.status == SUCCEEDED for b in current.branches):
                return self._succeeded(state, step, now_ms)
            return Transition(state)
        # a late success (the step failed, timed out or was abandoned): undo it now
        return self._compensate(state, step, now_ms, (branch.key,))

    def _branch_failed(
        self, state: SagaState, step: Step, branch: BranchState, event_type: str, now_ms: int
    ) -> Transition:
        if branch.status != RUNNING:
            return Transition(state)
        current = state.step(step.name).with_branch(replace(branch, status=STEP_FAILED))
        if current.status == RUNNING and state.state in (STARTED, EXECUTING):
            failed = replace(current, status=STEP_FAILED, deadline_ms=None)
            state = state.with_step(failed, updated_ms=now_ms)
            return self._begin_compensation(state, f"{step.name}: {event_type}", now_ms)
        return Transition(state.with_step(current, updated_ms=now_ms))  # nothing to undo

    def _branch_compensated(
        self, state: SagaState, step: Step, branch: BranchState, now_ms: int
    ) -> Transition:
        if branch.status != STEP_COMPENSATING:
            return Transition(state)  # a duplicate confirmation
        current = state.step(step.name).with_branch(replace(branch, status=STEP_COMPENSATED))
        state = state.with_step(current, updated_ms=now_ms)
        if current.keys(STEP_COMPENSATING):
            return Transition(state)  # the step waits for its other branches
        if current.keys(COMPENSATION_FAILED):  # a late branch undone; another one never was
            gave_up = replace(current, status=COMPENSATION_FAILED, deadline_ms=None)
            return Transition(state.with_step(gave_up))
        return self._compensated(state, step, now_ms)

    @staticmethod
    def _step_command(
        state: SagaState, step: Step, command_id: str, command_type: str, with_data: bool = True
    ) -> SagaCommand:
        """A step's forward command or compensation, keyed as the step says."""
        return SagaCommand(
            command_id,
            command_type,
            step.topic,
            state.saga_id,
            state.data if with_data else {},
            step.record_key(state.saga_id, state.data),
        )

    def _forward_command(self, state: SagaState, step: Step, command_id: str) -> SagaCommand:
        return self._step_command(state, step, command_id, step.command, step.with_data)

    def _succeeded(self, state: SagaState, step: Step, now_ms: int) -> Transition:
        current = state.step(step.name)
        if current.status == RUNNING and state.state in (STARTED, EXECUTING):
            done = replace(current, status=SUCCEEDED, deadline_ms=None)
            state = state.with_step(done, updated_ms=now_ms)
            completed = SagaEvent("SagaStepCompleted", {"step": step.name})
            index = self.definition.step_index[step.name]
            if index + 1 < len(self.definition.steps):
                state, commands = self._run(
                    replace(state, state=EXECUTING), self.definition.steps[index + 1], now_ms
                )
                return Transition(state, commands, (completed,))
            state = replace(state, state=COMPLETED, current_step=None)
            state, end = self._end(state, self.definition.on_completed, now_ms)
            return Transition(state, end, (completed, SagaEvent("SagaCompleted", {})))
        if current.outcome_pending:  # a late success: undo it now
            late = replace(current, status=SUCCEEDED, outcome_pending=False)
            state = state.with_step(late, updated_ms=now_ms)
            if step.compensation is None:  # nothing can undo it (the end command does)
                return Transition(state)
            return self._compensate(state, step, now_ms)
        return Transition(state)  # a duplicate reply

    def _failed(self, state: SagaState, step: Step, event_type: str, now_ms: int) -> Transition:
        current = state.step(step.name)
        failed = replace(current, status=STEP_FAILED, deadline_ms=None, outcome_pending=False)
        if current.status == RUNNING and state.state in (STARTED, EXECUTING):
            state = state.with_step(failed, updated_ms=now_ms)
            return self._begin_compensation(state, f"{step.name}: {event_type}", now_ms)
        if current.outcome_pending:  # a late failure: nothing to undo
            return Transition(state.with_step(failed, updated_ms=now_ms))
        return Transition(state)

    # -- compensation --------------------------------------------------------------------
    def _begin_compensation(self, state: SagaState, reason: str, now_ms: int) -> Transition:
        state = replace(
            state, state=COMPENSATING, reason=reason, current_step=None, updated_ms=now_ms
        )
        started = SagaEvent("SagaCompensating", {"reason": reason})
        nxt = self._compensate_next(state, now_ms)
        return Transition(nxt.state, nxt.commands, (started, *nxt.events))

    def _compensate_next(self, state: SagaState, now_ms: int) -> Transition:
        """Compensate the last SUCCEEDED step; none left: the saga is COMPENSATED."""
        for step in reversed(self.definition.steps):
            if step.compensation is None:
                continue
            current = state.step(step.name)
            if step.fan_out is not None:
                if current.status != STEP_COMPENSATING and current.keys(SUCCEEDED):
                    return self._compensate(state, step, now_ms)
            elif current.status == SUCCEEDED:
                return self._compensate(state, step, now_ms)
        if state.state != COMPENSATING:
            return Transition(state)
        state = replace(state, state=COMPENSATED, current_step=None, updated_ms=now_ms)
        state, end = self._end(state, self.definition.on_compensated, now_ms)
        return Transition(state, end, (SagaEvent("SagaCompensated", {"reason": state.reason}),))

    def _compensate(
        self, state: SagaState, step: Step, now_ms: int, keys: tuple[str, ...] | None = None
    ) -> Transition:
        """Undo a succeeded step; a fan-out step: its branches `keys` (default: every
        succeeded one). The step's attempts and deadline start again: a branch joining a
        compensation in progress gets its full number of tries."""
        assert step.compensation is not None
        current = replace(
            state.step(step.name),
            status=STEP_COMPENSATING,
            attempts=1,
            deadline_ms=now_ms + self.definition.compensation_timeout_ms,
            sent_ms=now_ms,
        )
        if state.state == COMPENSATING:
            state = replace(state, current_step=step.name)
        if step.fan_out is not None:
            undo = current.keys(SUCCEEDED) if keys is None else keys
            for key in undo:
                current = current.with_branch(BranchState(key, STEP_COMPENSATING))
            state = state.with_step(current, updated_ms=now_ms)
            return Transition(state, self._branch_commands(state, step, undo, compensate=True))
        command_id = derived_id(state.saga_id, step.name, "compensate")
        current = replace(current, compensation_id=command_id)
        command = self._step_command(state, step, command_id, step.compensation.command)
        return Transition(state.with_step(current, updated_ms=now_ms), (command,))

    def _retry_compensation(
        self, state: SagaState, step: Step, current: StepState, now_ms: int
    ) -> Transition:
        assert step.compensation is not None
        if current.attempts >= self.definition.max_compensation_attempts:
            gave_up = replace(current, status=COMPENSATION_FAILED, deadline_ms=None)
            for key in current.keys(STEP_COMPENSATING):
                gave_up = gave_up.with_branch(BranchState(key, COMPENSATION_FAILED))
            state = state.with_step(gave_up, updated_ms=now_ms)
            if state.state == FAILED:
                return Transition(state)
            # COMPENSATING, or COMPENSATED with a late compensation that never succeeded:
            # something stays reserved or charged, so the saga did not compensate.
            state = replace(state, state=FAILED, current_step=None)
            failed = SagaEvent("SagaFailed", {"step": step.name, "reason": "compensation failed"})
            return Transition(state, (), (failed,))
        again = replace(
            current,
            attempts=current.attempts + 1,
            deadline_ms=now_ms + self.definition.compensation_timeout_ms,
        )
        state = state.with_step(again, updated_ms=now_ms)
        if step.fan_out is not None:
            keys = current.keys(STEP_COMPENSATING)
            return Transition(state, self._branch_commands(state, step, keys, compensate=True))
        assert current.compensation_id is not None
        command = self._step_command(
            state, step, current.compensation_id, step.compensation.command
        )
        return Transition(state, (command,))

    def _compensated(self, state: SagaState, step: Step, now_ms: int) -> Transition:
        current = state.step(step.name)
        if current.status != STEP_COMPENSATING:
            return Transition(state)  # a duplicate confirmation
        done = replace(current, status=STEP_COMPENSATED, deadline_ms=None)
        state = state.with_step(done, updated_ms=now_ms)
        compensated = SagaEvent("SagaStepCompensated", {"step": step.name})
        nxt = self._compensate_next(state, now_ms)
        return Transition(nxt.state, nxt.commands, (compensated, *nxt.events))

    # -- the end command -----------------------------------------------------------------
    def _end(
        self, state: SagaState, end: EndCommand | None, now_ms: int
    ) -> tuple[SagaState, tuple[SagaCommand, ...]]:
        """The saga has ended: send its end command, tracked until confirmed (unless
        its effect is confirmed already: the client cancelled the order itself)."""
        if end is None:
            return state, ()
        pre = state.end
        if pre is not None and pre.command == end.command and pre.status == CONFIRMED:
            return state, ()
        if end.confirmed_by:
            tracked = EndState(
                end.command,
                AWAITING,
                None if end.per_branch_of else derived_id(state.saga_id, end.command),
                sends=1,
                deadline_ms=now_ms + self.definition.resend_after(1),
            )
            state = replace(state, end=tracked)
        return state, self._end_sends(state, end)

    def _end_sends(
        self, state: SagaState, end: EndCommand | None = None
    ) -> tuple[SagaCommand, ...]:
        """The end command (that of `state.end`, else `end`), same id every time."""
        if end is None and state.end is not None:
            end = self.definition.end_command(state.end.command)
        if end is None:
            return ()
        reason = {"reason": state.reason} if state.reason else {}
        if end.per_branch_of is not None:
            step = self.definition.step(end.per_branch_of)
            assert step.fan_out is not None
            data = dict(step.fan_out.branches(state.saga_id, state.data))
            confirmed = state.end.confirmed if state.end is not None else ()
            return tuple(
                SagaCommand(
                    branch_id(state.saga_id, end.command, "end", b.key),
                    end.command,
                    end.topic,
                    state.saga_id,
                    {**data.get(b.key, {}), **reason},
                    b.key,
                )
                for b in state.step(step.name).branches
                if b.status == SUCCEEDED and b.key not in confirmed
            )
        command_id = derived_id(state.saga_id, end.command)
        return (
            SagaCommand(command_id, end.command, end.topic, state.saga_id, reason, state.saga_id),
        )

    def _confirm_end_branch(
        self, state: SagaState, end: EndCommand, causation_id: str, now_ms: int
    ) -> SagaState:
        """A per-branch end command's branch is confirmed; all of them: the end is."""
        assert state.end is not None and end.per_branch_of is not None
        keys = state.step(end.per_branch_of).keys(SUCCEEDED)
        for key in keys:
            if key not in state.end.confirmed and causation_id == branch_id(
                state.saga_id, end.command, "end", key
            ):
                confirmed = (*state.end.confirmed, key)
                state = replace(state, end=replace(state.end, confirmed=confirmed))
                if set(keys) <= set(confirmed):
                    return self._confirm_end(state, now_ms)
                return replace(state, updated_ms=now_ms)
        return state

    def _confirm_end(self, state: SagaState, now_ms: int) -> SagaState:
        assert state.end is not None
        confirmed = replace(state.end, status=CONFIRMED, deadline_ms=None)
        return replace(state, end=confirmed, updated_ms=now_ms)

    def _order_cancelled(self, state: SagaState, now_ms: int) -> SagaState:
        """The order is cancelled: the saga's CancelOrder is confirmed (or needless)."""
        end = self.definition.on_compensated
        if end is None or not end.confirmed_by or state.state == COMPLETED:
            return state
        if state.end is None:
            return replace(state, end=EndState(end.command, CONFIRMED), updated_ms=now_ms)
        if state.end.command == end.command and state.end.status == AWAITING:
            return self._confirm_end(state, now_ms)
        return state
