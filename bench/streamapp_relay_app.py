"""streamapp's relay pattern for bench/relay.py (d): in -> out through a ResilientConsumer.

What every streamapp agent pays per record, with no domain logic: a StreamApp worker
(streamapp's faust patches, idempotent producer, sensors and metrics) whose one agent is
a :class:`~streamapp.resilience.consumer.ResilientConsumer` — the main and due-retry
agents behind the due-first gate, the processing timeout, the trace context continued
into the send (a ``traceparent`` header), the per-record metrics and the table-write
hand-over — with a handler that sends each record on unchanged.

Configured by environment variables set by the benchmark: RELAY_IN, RELAY_OUT, and the
usual STREAMAPP_* settings (bootstrap, app id, partitions, web port, data dir).
RELAY_PATTERN=plain replaces the ResilientConsumer with a bare faust agent on the same
StreamApp (an ablation: what the app's settings, patches and sensors cost, apart from
the consumer).
"""

from __future__ import annotations

import os
from typing import Any

from streamapp.app import StreamApp
from streamapp.resilience.consumer import Delivery, ResilientConsumer
from streamapp.settings import load_settings
from streamapp.topics import TopicSpec

settings = load_settings()
# No service modules: only the relay agent below (and no views).
app = StreamApp(settings, autodiscover=False)
source_name = os.environ["RELAY_IN"]
app.declared_topics.append(
    TopicSpec(source_name, settings.partitions, settings.topic_replication_factor)
)
sink = app.raw_topic(os.environ["RELAY_OUT"])

PATTERN = os.environ.get("RELAY_PATTERN", "resilient")
if PATTERN not in ("plain", "resilient"):
    raise SystemExit(f"RELAY_PATTERN must be plain or resilient, not {PATTERN!r}")

if PATTERN == "plain":

    @app.agent(app.raw_topic(source_name), name="relay")
    async def plain(stream: Any) -> None:
        async for event in stream.events():
            await sink.send(key=event.key, value=event.value)

else:
    consumer = ResilientConsumer(app, "relay", [app.raw_topic(source_name)])

    @consumer.agent
    async def relay(delivery: Delivery) -> None:
        await sink.send(key=delivery.key, value=delivery.value)
