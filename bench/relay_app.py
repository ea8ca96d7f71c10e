"""A bare Faust relay for bench/relay.py: one agent, no tables, in -> out unchanged.

Configured by environment variables set by the benchmark (not by streamapp settings):
RELAY_APP_ID, RELAY_BOOTSTRAP, RELAY_IN, RELAY_OUT, RELAY_PARTITIONS, RELAY_DATADIR.
"""

from __future__ import annotations

import os
from typing import Any

import faust

app = faust.App(
    os.environ.get("RELAY_APP_ID", "bench-relay"),
    broker=f"kafka://{os.environ.get('RELAY_BOOTSTRAP', '127.0.0.1:19092')}",
    store="memory://",
    datadir=os.environ.get("RELAY_DATADIR", "/tmp/bench-relay"),
    web_enabled=False,
    key_serializer="raw",
    value_serializer="raw",
    producer_acks=-1,
    producer_linger=0.005,
    broker_session_timeout=10.0,
    broker_heartbeat_interval=3.0,
)
partitions = int(os.environ.get("RELAY_PARTITIONS", "8"))
source = app.topic(os.environ.get("RELAY_IN", "bench.in"), partitions=partitions)
sink = app.topic(os.environ.get("RELAY_OUT", "bench.out"), partitions=partitions)


@app.agent(source)
async def relay(stream: Any) -> None:
    async for event in stream.events():
        await sink.send(key=event.key, value=event.value)
