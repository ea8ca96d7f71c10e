"""Operator tools for dead letters: list, show, replay, purge (``streamapp dlq ...``).

Replay re-drives selected dead letters to the topic they first failed on, with their
key, value and original headers (streamapp's retry/dlq headers removed, so the retry
count starts again). Replaying twice is harmless: the handlers deduplicate (orders by
command id), so a record is applied once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin.records_to_delete import RecordsToDelete

from streamapp.kafka.topics import admin_client
from streamapp.resilience import headers as h
from streamapp.tools.records import read_all


@dataclass(frozen=True)
class DeadLetter:
    """One record of a ``<topic>.dlq``: where it sits and why it is there."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]

    @classmethod
    def from_record(cls, record: Any) -> DeadLetter:
        return cls(
            record.partition,
            record.offset,
            record.key,
            record.value,
            tuple((k, bytes(v)) for k, v in (record.headers or ())),
        )

    def text(self, name: str) -> str:
        value = h.header(self.headers, name)
        return value.decode(errors="replace") if value is not None else ""

    @property
    def original_topic(self) -> str:
        return self.text(h.ORIGINAL_TOPIC)

    @property
    def error_type(self) -> str:
        return self.text(h.ERROR_TYPE)

    def summary(self) -> str:
        key = (self.key or b"").decode(errors="replace")[:40]
        where = (
            f"{self.original_topic}[{self.text(h.ORIGINAL_PARTITION)}]"
            f"@{self.text(h.ORIGINAL_OFFSET)}"
        )
        return (
            f"{self.partition:>3} {self.offset:>8}  {self.text(h.FAILED_AT):<24} "
            f"{self.error_type:<18} {where:<40} key={key!r}  "
            f"{self.text(h.ERROR_MESSAGE)[:80]}"
        )


def select(
    letters: Iterable[DeadLetter],
    partition: int | None = None,
    offsets: Sequence[int] = (),
    error_type: str | None = None,
) -> list[DeadLetter]:
    """The dead letters matching every given filter."""
    return [
        d
        for d in letters
        if (partition is None or d.partition == partition)
        and (not offsets or d.offset in offsets)
        and (error_type is None or d.error_type == error_type)
    ]


def replay_record(
    letter: DeadLetter,
) -> tuple[str, bytes | None, bytes | None, list[tuple[str, bytes]]]:
    """(topic, key, value, headers) that re-drive a dead letter: retry headers reset."""
    if not letter.original_topic:
        raise ValueError(f"dead letter {letter.partition}@{letter.offset} has no original-topic")
    return letter.original_topic, letter.key, letter.value, h.original_headers(letter.headers)


async def read_dead_letters(bootstrap: str, dlq_topic: str) -> list[DeadLetter]:
    return [DeadLetter.from_record(r) for r in await read_all(bootstrap, dlq_topic)]


async def replay(
    bootstrap: str, letters: Sequence[DeadLetter], progress: Callable[[int], None] | None = None
) -> int:
    """Produce every selected dead letter to its original topic; returns how many."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", max_request_size=8 * 1024 * 1024
    )
    await producer.start()
    try:
        for letter in letters:
            topic, key, value, headers = replay_record(letter)
            await producer.send_and_wait(topic, value, key=key, headers=headers)
            if progress is not None:
                progress(1)
    finally:
        await producer.stop()
    return len(letters)


async def purge(bootstrap: str, dlq_topic: str, before: dict[int, int]) -> dict[int, int]:
    """Delete the records before the given offset of each partition (Kafka DeleteRecords)."""
    async with admin_client(bootstrap) as admin:
        done = await admin.delete_records(
            {
                TopicPartition(dlq_topic, p): RecordsToDelete(before_offset=o)
                for p, o in before.items()
            }
        )
    return {tp.partition: low for tp, low in done.items()}
