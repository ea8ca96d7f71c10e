"""The probe agent: counts probes per key in a changelog-backed RocksDB table."""

from __future__ import annotations

import time
from typing import Any

from streamapp.app import app
from streamapp.messages import iso_utc
from streamapp.probe.model import InvalidProbe, parse_probe, record_probe
from streamapp.resilience.deadletter import dead_letter

AGENT = "probe"

probes_topic = app.contract_topic(
    "streamapp.probes", key_type=bytes, value_type=bytes, dead_letters=True
)
probes_table = app.keyed_table("probes")


@app.agent(probes_topic, name=AGENT)
async def count_probes(stream: Any) -> None:
    """Record each probe; an invalid one is logged and counted, never stops the partition."""
    async for event in stream.events():
        started = time.perf_counter()
        key = event.key
        try:
            probe = parse_probe(key, event.value)
        except InvalidProbe as exc:
            await dead_letter(app, AGENT, event, exc.reason, exc)
            continue
        message = event.message
        updated = record_probe(
            probes_table.get(key), probe, message.partition, message.offset, iso_utc()
        )
        if updated is None:
            app.metrics.records_replayed.labels(AGENT).inc()
            continue
        # Reassign (never mutate in place): only assignments reach the changelog.
        probes_table[key] = updated
        await app.hand_over_table_writes()
        app.metrics.processed(AGENT, started)
