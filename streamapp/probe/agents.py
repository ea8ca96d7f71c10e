"""The probe agent: counts probes per key in a changelog-backed RocksDB table."""

from __future__ import annotations

from streamapp import topics
from streamapp.app import app
from streamapp.messages import iso_utc
from streamapp.probe.model import InvalidProbe, parse_probe, record_probe
from streamapp.resilience.consumer import Delivery, ResilientConsumer
from streamapp.resilience.policy import ErrorClassifier

AGENT = "probe"

probes_topic = app.contract_topic(topics.PROBES, key_type=bytes, value_type=bytes)
probes_table = app.keyed_table("probes")


consumer = ResilientConsumer(
    app,
    AGENT,
    [probes_topic],
    classifier=ErrorClassifier().with_never([InvalidProbe]),
    reason_of=lambda error: error.reason if isinstance(error, InvalidProbe) else None,
)


@consumer.agent
async def record(delivery: Delivery) -> bool:
    """Record a probe; True when this record was already recorded (a redelivery)."""
    key = delivery.key or b""  # no key: parse_probe refuses it
    probe = parse_probe(key, delivery.value)  # InvalidProbe: never retried
    first = delivery.origin
    updated = record_probe(probes_table.get(key), probe, first.partition, first.offset, iso_utc())
    if updated is None:
        return True
    # Reassign (never mutate in place): only assignments reach the changelog.
    probes_table[key] = updated
    return False
