"""The one topic catalogue: every topic's name, partitions and config, the names of the
retry, due and dead-letter topics derived from a topic, and the co-partitioning rules.

Every other module asks this one; none builds a topic name itself. Names here are the
contract's (without the configured prefix: ``Settings.topic`` adds it).

Co-partitioning. Each service is its own Faust app and creates the topics it declares
when it starts, so the orchestrator and a participant must agree on every topic's
partitions: both declare them from here. Faust writes a table change to the changelog
partition of the record being processed, so a participant's commands are keyed by the
entity whose state they change (the saga definition says which: ``Step.key_field``):
``payments.commands`` by customerId (an account and its charges live in its customer's
partition), ``inventory.commands`` by sku (the saga fans ReserveInventory out, one
command per sku of an order), ``shipping.commands`` by order id. Every topic but
``_schemas`` has the configured partition count (events topics included, keyed by the
saga id), so a saga's inputs are co-partitioned with the saga table that consumes them. A consumed
topic's retry, due and dead-letter topics have its partitions (partition p of ``<topic>``
and ``<topic>.retry.due`` belong to the same worker). README "Scaling" says what this
costs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

#: The cleanup policy of table changelogs (and of any compacted topic).
COMPACT: Mapping[str, str] = {"cleanup.policy": "compact"}

#: The largest record any streamapp topic accepts (``max.message.bytes``).
MAX_RECORD_BYTES = 4 * 1024 * 1024

_RETRY_INFIX = ".retry."
_DUE_SUFFIX = ".retry.due"
_DLQ_SUFFIX = ".dlq"


@dataclass(frozen=True)
class TopicSpec:
    """A topic as streamapp wants it: name, partitions, replication and config."""

    name: str
    partitions: int
    replication_factor: int
    config: Mapping[str, str] = field(default_factory=dict)

    @property
    def compacted(self) -> bool:
        return "compact" in self.config.get("cleanup.policy", "")


@dataclass(frozen=True)
class Topic:
    """A contract topic: its name and what streamapp creates it with."""

    name: str
    single_partition: bool = False
    compacted: bool = False
    config: Mapping[str, str] = field(default_factory=dict)
    #: Declare ``<name>.dlq`` even in an app that only sends to the topic (the app that
    #: consumes it declares it through its ResilientConsumer), so that both list it.
    dead_letters: bool = False

    def spec(self, prefixed_name: str, partitions: int, replication_factor: int) -> TopicSpec:
        """What to create, for the configured partition count and replication factor."""
        return TopicSpec(
            name=prefixed_name,
            partitions=1 if self.single_partition else partitions,
            replication_factor=replication_factor,
            config={**(COMPACT if self.compacted else {}), **self.config},
        )


# An oversized command reaches the worker, which rejects it with a reply, instead of the
# client failing with MessageSizeTooLarge.
ORDERS_COMMANDS = Topic("orders.commands", config={"max.message.bytes": str(MAX_RECORD_BYTES)})
ORDERS_REPLIES = Topic("orders.replies")
ORDERS_EVENTS = Topic("orders.events")
SAGAS_EVENTS = Topic("sagas.events")
SAGAS_TIMEOUTS = Topic("sagas.timeouts", config={"retention.ms": str(24 * 3600 * 1000)})
PROBES = Topic("streamapp.probes")
#: The schema registry's log: one partition, so every request has one order.
SCHEMAS = Topic("_schemas", single_partition=True, compacted=True)

PARTICIPANTS = ("inventory", "payments", "shipping")


def participant_commands(service: str) -> Topic:
    """``<service>.commands`` (keyed by the entity the command changes)."""
    return Topic(f"{service}.commands", dead_letters=True)


def participant_events(service: str) -> Topic:
    """``<service>.events`` (keyed by saga id, co-partitioned with the saga table)."""
    return Topic(f"{service}.events")


# -- derived names -----------------------------------------------------------------------
def retry_topic(topic: str, attempt: int) -> str:
    """``<topic>.retry.<attempt>``: where a record waits before its retry."""
    return f"{topic}{_RETRY_INFIX}{attempt}"


def due_topic(topic: str) -> str:
    """``<topic>.retry.due``: records due for processing again now."""
    return f"{topic}{_DUE_SUFFIX}"


def dlq_topic(topic: str) -> str:
    """``<topic>.dlq`` (of a topic name or of a DLQ name: ``x.dlq`` stays ``x.dlq``)."""
    return f"{topic.removesuffix(_DLQ_SUFFIX)}{_DLQ_SUFFIX}"


def is_due(topic: str) -> bool:
    return topic.endswith(_DUE_SUFFIX)


def is_dlq(topic: str) -> bool:
    return topic.endswith(_DLQ_SUFFIX)


def is_waiting_retry(topic: str) -> bool:
    """``<topic>.retry.<n>`` (what the retry relay reads), not ``.retry.due``."""
    head, sep, tail = topic.rpartition(_RETRY_INFIX)
    return bool(head and sep) and tail.isdigit()


def main_topic(topic: str) -> str:
    """The topic a record was first consumed from, for any of its retry topics."""
    if is_due(topic):
        return topic[: -len(_DUE_SUFFIX)]
    head, sep, tail = topic.rpartition(_RETRY_INFIX)
    return head if sep and tail.isdigit() else topic


def retry_specs(spec: TopicSpec, attempts: int) -> list[TopicSpec]:
    """``<topic>.retry.1..attempts``, ``<topic>.retry.due`` and ``<topic>.dlq`` of a
    consumed topic: same partitions and size limit, never compacted."""
    names = [retry_topic(spec.name, n) for n in range(1, attempts + 1)]
    names += [due_topic(spec.name), dlq_topic(spec.name)]
    return [_derived(spec, name) for name in names]


def dlq_spec(spec: TopicSpec) -> TopicSpec:
    """``<topic>.dlq``: same partitions and size limit (any record fits), never compacted."""
    return _derived(spec, dlq_topic(spec.name))


def _derived(spec: TopicSpec, name: str) -> TopicSpec:
    config = {k: v for k, v in spec.config.items() if k != "cleanup.policy"}
    return replace(spec, name=name, config=config)


def leader_topic(app_id: str) -> str:
    """faust's leader-election topic of an app (one partition)."""
    return f"{app_id}-__assignor-__leader"
