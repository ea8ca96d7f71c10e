"""Workers produce idempotently under acks=all (streamapp.kafka.producer)."""

from __future__ import annotations

import asyncio

import pytest

from streamapp.app import create_app
from streamapp.kafka.producer import IdempotentProducer, idempotent
from streamapp.settings import Settings


@pytest.mark.parametrize(
    ("acks", "in_transaction", "expected"),
    [(-1, False, True), (1, False, False), (0, False, False), (-1, True, False)],
)
def test_idempotent_only_with_acks_all_outside_transactions(
    acks: int, in_transaction: bool, expected: bool
) -> None:
    assert idempotent(acks, in_transaction) is expected


@pytest.mark.parametrize(("acks", "expected"), [("all", True), ("1", False)])
def test_the_apps_aiokafka_producer_is_idempotent_under_acks_all(acks: str, expected: bool) -> None:
    async def build() -> object:
        app = create_app(Settings(producer_acks=acks))
        producer = app.producer
        assert isinstance(producer, IdempotentProducer)
        return producer._new_producer()

    aiokafka_producer = asyncio.run(build())
    # aiokafka keeps a transaction manager exactly when idempotence is on.
    assert (getattr(aiokafka_producer, "_txn_manager", None) is not None) is expected
