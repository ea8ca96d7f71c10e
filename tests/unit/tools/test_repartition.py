"""Planning and placement of ``streamapp repartition`` (pure), and the changelog header."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import pytest
from aiokafka import TopicPartition
from aiokafka.partitioner import DefaultPartitioner

from streamapp.kafka.current import processing
from streamapp.kafka.source_key import SOURCE_KEY, UNKEYED, source_key_headers, writing_for
from streamapp.resilience.headers import ORIGINAL_TOPIC
from streamapp.resilience.housekeeping import TICK_HEADER, TICK_KEY
from streamapp.settings import load_settings
from streamapp.tools.repartition import (
    TABLES,
    Record,
    RepartitionError,
    consumed_topics,
    group_ids,
    in_flight_changelog,
    is_timer_tick,
    latest,
    partition_for,
    place_changelog,
    place_history,
    plan,
    renamed_headers,
    undrained,
)
from streamapp.tracing.recorder import SWEEP_KEY

OLD = load_settings(environ={"STREAMAPP_APP_ID": "shop", "STREAMAPP_TOPIC_PREFIX": "v1."})


def record(
    partition: int, offset: int, key: bytes | None, value: bytes | None, **headers: bytes
) -> Record:
    return Record(partition, offset, key, value, tuple(headers.items()), 1_000 + offset)


def keyed(key: bytes, offset: int, value: bytes | None, old: int = 2) -> Record:
    """A changelog record written for a record keyed by `key`, where faust put it."""
    return Record(partition_for(key, old), offset, b"t/" + key, value, ((SOURCE_KEY, key),), offset)


def test_partition_for_is_the_producers_default_partitioner() -> None:
    for key in (b"SKU-1", b"cust-7", b"order-abc", b"", "ü".encode()):
        for count in (1, 2, 3, 8, 12):
            expected = DefaultPartitioner()(key, list(range(count)), list(range(count)))
            assert partition_for(key, count) == expected


def test_plan_moves_history_dead_letters_schemas_and_every_services_changelogs() -> None:
    existing = [
        "v1.orders.commands",
        "v1.orders.events",
        "v1.inventory.commands.dlq",
        "v1._schemas",
        "v1.sagas.timeouts",  # recreated empty by the workers: not copied
        "v1.orders.commands.retry.1",
        "shop-eventstore-changelog",
        "shop-inventory-inventory-state-changelog",
        "shop-probes-changelog",  # a liveness check of this deployment: left behind
        "shop-__assignor-__leader",
        "other-eventstore-changelog",  # other deployments'
        "shop-eu-eventstore-changelog",
        "shop-eu-inventory-state-changelog",
    ]
    moves = {m.source: m for m in plan(existing, OLD, "v2.", "shop2").moves}
    assert set(moves) == {
        "v1.orders.commands",
        "v1.orders.events",
        "v1.inventory.commands.dlq",
        "v1._schemas",
        "shop-eventstore-changelog",
        "shop-inventory-inventory-state-changelog",
    }
    assert moves["v1.orders.commands"].target == "v2.orders.commands"
    assert moves["v1._schemas"].kind == "single"
    assert moves["shop-inventory-inventory-state-changelog"].target == (
        "shop2-inventory-inventory-state-changelog"
    )
    assert moves["shop-eventstore-changelog"].kind == "changelog"
    assert moves["v1.inventory.commands.dlq"].kind == "history"


def test_plan_refuses_the_same_deployment_and_an_absent_one() -> None:
    for prefix, app_id in (("v1.", "shop2"), ("v2.", "shop"), ("v1.", "shop")):
        with pytest.raises(RepartitionError, match="its own app id and its own topic prefix"):
            plan(["v1.orders.commands"], OLD, prefix, app_id)
    with pytest.raises(RepartitionError, match="no topics"):
        plan(["v9.orders.commands"], OLD, "v2.", "shop2")


def test_latest_keeps_the_last_value_per_key_and_partition_and_drops_deleted_keys() -> None:
    records = [
        record(0, 0, b"a", b"1"),
        record(0, 1, b"b", b"1"),
        record(0, 2, b"a", b"2"),
        record(0, 3, b"b", None),
        record(1, 0, b"c", b"1"),
        record(1, 1, b"b", b"9"),  # Kafka compacts per partition: not deleted by [0]@3
        record(1, 2, b"a", None),  # nor does this delete [0]'s a
    ]
    assert [(r.partition, r.key, r.value) for r in latest(records)] == [
        (0, b"a", b"2"),
        (1, b"c", b"1"),
        (1, b"b", b"9"),
    ]


def test_changelog_entries_go_where_their_source_key_lands_under_the_new_count() -> None:
    entries = [keyed(f"SKU-{n}".encode(), n, b"{}") for n in range(40)]
    placed = place_changelog(entries, 2, 8)
    assert not placed.unplaceable
    assert len(placed.targets) == 40
    for where, entry in placed.targets:
        assert where == partition_for(dict(entry.headers)[SOURCE_KEY], 8)
    assert len({where for where, _ in placed.targets}) > 2  # spread beyond the old two


def test_changelog_entries_without_or_against_their_source_key_are_not_guessed() -> None:
    no_header = Record(0, 5, b"k", b"v", (), 0)
    wrong = keyed(b"SKU-1", 6, b"v")
    wrong = wrong._replace(partition=1 - wrong.partition)  # e.g. a tick sent to a partition
    deleted = keyed(b"SKU-2", 7, None)  # a deletion: nothing to place
    placed = place_changelog([no_header, wrong, deleted], 2, 4)
    assert placed.targets == []
    assert len(placed.unplaceable) == 2
    assert SOURCE_KEY in placed.unplaceable[0]
    assert "not keyed here" in placed.unplaceable[1]


def test_history_records_follow_their_key_and_keep_their_order_per_key() -> None:
    records = [record(p, o, f"k{o % 5}".encode(), b"v") for p in (0, 1) for o in range(10)]
    placed = place_history(records, 4)
    assert all(where == partition_for(r.key or b"", 4) for where, r in placed.targets)
    for key in {r.key for r in records}:
        mine = [r for _, r in placed.targets if r.key == key]
        assert mine == [r for r in records if r.key == key]
    assert place_history([record(3, 0, None, b"v")], 2).targets[0][0] == 1


def test_original_topic_headers_point_at_the_new_deployment() -> None:
    letter = record(0, 0, b"k", b"v", **{ORIGINAL_TOPIC: b"v1.orders.commands", "x": b"v1.y"})
    rename = plan(["v1.orders.commands"], OLD, "v2.", "shop2").rename
    assert renamed_headers(letter, rename) == [
        (ORIGINAL_TOPIC, b"v2.orders.commands"),
        ("x", b"v1.y"),
    ]


def test_drained_only_without_members_and_with_every_record_processed() -> None:
    tp = TopicPartition("v1.orders.commands", 0)
    assert undrained({"shop": 0, "shop-inventory": 0}, {tp: 0}) == []
    problems = undrained({"shop": 2}, {tp: 3})
    assert problems == [
        "group shop has 2 member(s): stop its workers",
        "v1.orders.commands[0]: 3 record(s) not processed",
    ]


def test_consumed_topics_are_the_deployments_consumed_ones_and_their_retries() -> None:
    committed = [TopicPartition("v1.orders.commands", 0)]
    existing = [
        "v1.orders.commands",
        "v1.orders.commands.retry.1",
        "v1.orders.commands.retry.due",
        "v1.inventory.commands",  # consumed, never committed: still checked
        "v1.orders.replies",  # only written
        "v1.sagas.events",
        "v2.orders.commands.retry.1",  # another deployment's
        "other.retry.due",
    ]
    assert consumed_topics(committed, existing, OLD) == {
        "v1.orders.commands",
        "v1.orders.commands.retry.1",
        "v1.orders.commands.retry.due",
        "v1.inventory.commands",
    }


def test_timer_ticks_are_not_work_left_undone() -> None:
    tick = record(0, 0, b"housekeeping", b"{}", **{TICK_HEADER: b"expire"})
    retried = record(0, 1, b"order-1", b"{}")
    assert is_timer_tick("v1.orders.commands.retry.due", tick, "v1.sagas.timeouts")
    assert not is_timer_tick("v1.orders.commands.retry.due", retried, "v1.sagas.timeouts")
    assert is_timer_tick("v1.sagas.timeouts", retried, "v1.sagas.timeouts")
    # a tick parked in a retry topic after a failure is still a tick
    assert is_timer_tick("v1.orders.commands.retry.2", tick, "v1.sagas.timeouts")
    assert is_timer_tick("v1.sagas.timeouts.retry.1", retried, "v1.sagas.timeouts")
    assert not is_timer_tick("v1.orders.commands.retry.2", retried, "v1.sagas.timeouts")


def test_groups_and_the_in_flight_changelog_of_a_deployment() -> None:
    assert group_ids("shop") == [
        "shop",
        "shop-inventory",
        "shop-payments",
        "shop-shipping",
        "shop-retry-relay",
        "shop-inventory-retry-relay",
        "shop-payments-retry-relay",
        "shop-shipping-retry-relay",
    ]
    assert in_flight_changelog("shop") == "shop-saga-deadlines-changelog"


def test_every_table_of_the_orders_service_is_copied_but_the_probes() -> None:
    from streamapp.app import app

    app.discover()  # imports the service's modules, which declare the tables
    declared = {table.name for table in app.tables.values()} - {"probes"}
    assert app.settings.service == "orders"
    assert declared == set(TABLES["orders"])


class Event:  # weak-referenceable, as faust's events are
    def __init__(self, key: bytes | None) -> None:
        self.message = SimpleNamespace(key=key)


def test_a_changelog_write_names_the_key_of_the_record_being_processed() -> None:
    assert source_key_headers() == []
    with processing(cast(Any, Event(b"SKU-1"))):
        assert source_key_headers() == [(SOURCE_KEY, b"SKU-1")]
    with processing(cast(Any, Event(None))):
        assert source_key_headers() == [(UNKEYED, b"")]


def test_a_ticks_writes_name_no_key_unless_made_for_one() -> None:
    with processing(cast(Any, Event(TICK_KEY))):  # sent to a partition, not by key
        assert source_key_headers() == []
        with writing_for(b"SKU-2"):  # e.g. a participant settling an entity
            assert source_key_headers() == [(SOURCE_KEY, b"SKU-2")]
        with writing_for(None):
            assert source_key_headers() == []
    with processing(cast(Any, Event(SWEEP_KEY))):
        assert source_key_headers() == []


def test_an_entry_written_for_a_keyless_record_keeps_its_partition_number() -> None:
    keyless = Record(3, 0, b"answer/x", b"{}", ((UNKEYED, b""),), 0)
    assert place_changelog([keyless], 4, 2).targets == [(1, keyless)]
