"""The saga's topics, declared the same way by every service that touches them.

Each service is its own Faust app and creates the topics it declares when it starts,
so the orchestrator and a participant must agree on every topic's partitions.

inventory and payments take their commands on ONE partition: their state is shared
across orders (stock per sku, an account per customer) while commands are keyed by
order id, and Faust writes a table change to the changelog partition of the record
being processed. With several partitions, one sku's stock would be written from
several partitions and restored wrongly; an all-or-nothing reservation over several
skus would need a cross-partition transaction. One partition keeps every reservation
and charge serial and exactly restorable; their events topics keep the full partition
count, co-partitioned with the saga table that consumes them. README "Scaling" says
what this costs.
"""

from __future__ import annotations

from typing import Any

#: Participants whose commands are processed on a single partition (see above).
SINGLE_PARTITION = frozenset({"inventory", "payments"})

PARTICIPANTS = ("inventory", "payments", "shipping")


def commands_topic(app: Any, service: str) -> Any:
    """``<service>.commands``. The service's ResilientConsumer declares its retry topics
    and DLQ; the DLQ is declared here too so that the orchestrator's app (which only
    sends commands) lists participant dead letters for `streamapp dlq list`."""
    return app.contract_topic(
        f"{service}.commands",
        key_type=bytes,
        value_type=bytes,
        partitions=1 if service in SINGLE_PARTITION else None,
        dead_letters=True,
    )


def events_topic(app: Any, service: str) -> Any:
    """``<service>.events`` (keyed by saga id, co-partitioned with the saga table)."""
    return app.contract_topic(f"{service}.events", key_type=bytes, value_type=bytes)
