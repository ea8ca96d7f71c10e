"""`streamapp probe`: send a probe record and wait until a worker's view shows it."""

from __future__ import annotations

import asyncio
import sys
import time
import uuid

from aiokafka import AIOKafkaProducer

from streamapp import topics
from streamapp.probe.model import encode_probe
from streamapp.settings import Settings
from streamapp.web import client


def probe(settings: Settings, key: str, url: str | None, timeout: float) -> int:
    """Send one probe and wait until a worker's view shows it: the whole path works."""
    probe_id = str(uuid.uuid4())
    topic = settings.topic(topics.PROBES.name)

    async def send() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap, acks="all")
        await producer.start()
        try:
            await producer.send_and_wait(topic, encode_probe(probe_id), key=key.encode())
        finally:
            await producer.stop()

    started = time.monotonic()
    asyncio.run(send())
    url = f"{url or f'http://{settings.web_host}:{settings.web_port}'}/probes/{key}"
    while time.monotonic() - started < timeout:
        try:
            if client.fetch_json(url, 2).get("lastProbeId") == probe_id:
                print(
                    f"probe {probe_id} seen via {url} after "
                    f"{(time.monotonic() - started) * 1000:.0f} ms"
                )
                return 0
        except (client.HttpError, AttributeError):
            pass
        time.sleep(0.2)
    print(f"probe {probe_id} not seen via {url} within {timeout:.0f} s", file=sys.stderr)
    return 1
