"""bench/failover's pure parts: which partition a key lands on, when a partition answers again."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner

from bench.failover import answered_again, keys_per_partition, partition_of


def test_keys_land_where_the_producers_default_partitioner_puts_them() -> None:
    keys = keys_per_partition("run", 8, 3)
    assert all(len(group) >= 3 for group in keys)
    for partition, group in enumerate(keys):
        for key in group:
            assert partition_of(key, 8) == partition
            assert DefaultPartitioner()(key.encode(), list(range(8)), list(range(8))) == partition


def test_a_partition_answers_again_at_the_end_of_its_longest_silence() -> None:
    kill = 10_000
    # kill -9: silent from the kill until the new owner's first reply.
    assert answered_again(kill, [9_800, 13_400, 13_450, 13_700], 20_000) == 3_400
    # SIGTERM: the stopping worker still answers at +50 ms, then the partition is silent.
    assert answered_again(kill, [9_900, 10_050, 12_300, 12_310, 12_600], 20_000) == 2_300
    # Replies before the kill or after the window do not count; none at all: the window.
    assert answered_again(kill, [9_000, 25_000], 20_000) == 10_000
