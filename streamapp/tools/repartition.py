"""``streamapp repartition``: move a stopped deployment onto topics with a new partition count.

Kafka can add partitions to a topic but never moves a record: a key then hashes to
another partition, away from its history and from the table state faust keeps in that
partition of a changelog. So a deployment changes its partition count by moving to new
topics (a new app id and topic prefix), drained and stopped first (docs/scaling.md,
"More partitions"). This tool

1. refuses unless the old deployment is drained: no member left in any of its consumer
   groups, and every partition its groups consume committed up to its end — nothing
   waits in a command, event, retry or due topic;
2. copies the history outside clients read (commands, replies, events), the dead
   letters and the schema registry's log, each record to the partition its key hashes to
   under the new count (per key, order is kept; ``original-topic`` headers renamed);
3. copies every table changelog as its latest value per key (tombstones dropped), each
   entry to the partition of the record key it was written for: faust writes a change
   to the partition of the record being processed, which the changelog header
   :data:`~streamapp.kafka.source_key.SOURCE_KEY` names;
4. commits the new groups at the end of the copied topics they consume, so the new
   workers do not process the history again.

Topics only the workers read and that a drained deployment leaves empty of work
(``sagas.timeouts``, probes, ``.retry.<n>``/``.retry.due``) are recreated empty by the
new workers. The pure planning and placement functions come first; the I/O follows.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.partitioner import murmur2
from aiokafka.structs import OffsetAndMetadata

from streamapp import topics
from streamapp.kafka.source_key import SOURCE_KEY, UNKEYED
from streamapp.kafka.topics import admin_client, describe_topics, ensure_topics
from streamapp.resilience.headers import ORIGINAL_TOPIC
from streamapp.resilience.housekeeping import TICK_HEADER
from streamapp.saga.timers import DEADLINES, EXPIRIES, SAGAS
from streamapp.settings import SERVICES, Settings
from streamapp.tools.records import read_topics

CHANGELOG_SUFFIX = "-changelog"
#: Offending records shown per problem.
SHOWN = 5


class RepartitionError(RuntimeError):
    """The old deployment cannot be moved (not drained, or state that cannot be placed)."""


# -- pure: names, placement ----------------------------------------------------------------
def partition_for(key: bytes, partitions: int) -> int:
    """The partition the producers' default partitioner (Kafka's murmur2) picks for a key."""
    return (int(murmur2(key)) & 0x7FFFFFFF) % partitions


def service_app_ids(app_id: str) -> list[str]:
    """Each service's Faust app id (its consumer group and changelog prefix)."""
    return [app_id if s == "orders" else f"{app_id}-{s}" for s in SERVICES]


def group_ids(app_id: str) -> list[str]:
    """Every consumer group of a deployment: each service's and its retry relay's."""
    ids = service_app_ids(app_id)
    return [*ids, *(f"{i}-retry-relay" for i in ids)]


def history_names() -> list[str]:
    """The contract topics whose records are copied (unprefixed)."""
    names = [t.name for t in (topics.ORDERS_COMMANDS, topics.ORDERS_REPLIES)]
    names += [topics.ORDERS_EVENTS.name, topics.SAGAS_EVENTS.name]
    for service in topics.PARTICIPANTS:
        names += [
            topics.participant_commands(service).name,
            topics.participant_events(service).name,
        ]
    return names


#: The contract topics the workers consume (orders.replies and sagas.events are only
#: written): their dead letters are copied, their retry and due topics must be drained.
CONSUMED = (
    topics.ORDERS_COMMANDS.name,
    topics.ORDERS_EVENTS.name,
    topics.SAGAS_TIMEOUTS.name,
    topics.PROBES.name,
    *(topics.participant_commands(s).name for s in topics.PARTICIPANTS),
    *(topics.participant_events(s).name for s in topics.PARTICIPANTS),
)

#: Every table copied, by service (declared in the services' agents.py). The probes
#: table stays behind: a probe is a liveness check of one deployment, and its entries
#: name offsets of the old probes topic (which is not copied).
TABLES = {
    "orders": ("eventstore", SAGAS, DEADLINES, EXPIRIES, "traces"),
    **{service: (f"{service}-state",) for service in topics.PARTICIPANTS},
}


def changelogs(app_id: str) -> list[str]:
    """The changelog topic of every copied table of a deployment."""
    return [
        f"{service_app_id}-{table}{CHANGELOG_SUFFIX}"
        for service, service_app_id in zip(SERVICES, service_app_ids(app_id), strict=True)
        for table in TABLES.get(service, ())
    ]


def retry_topics_of(existing: Iterable[str], old: Settings) -> list[str]:
    """The deployment's ``.retry.<n>`` and ``.retry.due`` topics that exist."""
    mains = {old.topic(name) for name in CONSUMED}
    return sorted(
        name
        for name in existing
        if (topics.is_due(name) or topics.is_waiting_retry(name))
        and topics.main_topic(name) in mains
    )


def in_flight_changelog(app_id: str) -> str:
    """The changelog of the saga deadlines: it holds exactly the sagas in flight."""
    return f"{app_id}-{DEADLINES}{CHANGELOG_SUFFIX}"


class Move(NamedTuple):
    """One old topic and where its records go."""

    source: str
    target: str
    kind: str  # "history" (every record, by key), "changelog" (latest per key), "single"


@dataclass(frozen=True)
class Plan:
    """What to copy, for one old → new deployment."""

    old_prefix: str
    new_prefix: str
    old_app_id: str
    new_app_id: str
    moves: tuple[Move, ...]

    def rename(self, topic: str) -> str:
        """The new name of an old topic (contract topic or changelog)."""
        if topic.endswith(CHANGELOG_SUFFIX) and topic.startswith(f"{self.old_app_id}-"):
            return f"{self.new_app_id}{topic[len(self.old_app_id) :]}"
        if topic.startswith(self.old_prefix):
            return f"{self.new_prefix}{topic[len(self.old_prefix) :]}"
        return topic


def plan(existing: Iterable[str], old: Settings, new_prefix: str, new_app_id: str) -> Plan:
    """The moves for the old deployment's topics that exist."""
    if new_prefix == old.topic_prefix or new_app_id == old.app_id:
        raise RepartitionError(
            "the new deployment needs its own app id and its own topic prefix (consumer "
            "groups and changelogs are named by the app id, contract topics by the prefix)"
        )
    present = set(existing)
    plain = Plan(old.topic_prefix, new_prefix, old.app_id, new_app_id, ())
    moves: list[Move] = []
    for name in history_names():
        moves.append(Move(old.topic(name), plain.rename(old.topic(name)), "history"))
    for name in CONSUMED:
        dlq = topics.dlq_topic(old.topic(name))
        moves.append(Move(dlq, plain.rename(dlq), "history"))
    schemas = old.topic(topics.SCHEMAS.name)
    moves.append(Move(schemas, plain.rename(schemas), "single"))
    for name in changelogs(old.app_id):
        moves.append(Move(name, plain.rename(name), "changelog"))
    found = tuple(m for m in moves if m.source in present)
    if not any(m.kind == "history" for m in found):
        raise RepartitionError(f"no topics of the deployment {old.app_id!r} ({old.topic_prefix!r})")
    return Plan(old.topic_prefix, new_prefix, old.app_id, new_app_id, found)


class Record(NamedTuple):
    """A record as copied: where it was, what it holds."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    timestamp_ms: int


def header(record: Record, name: str) -> bytes | None:
    return next((v for k, v in record.headers if k == name), None)


def latest(records: Iterable[Record]) -> list[Record]:
    """A changelog as compaction leaves it: the last record per key in each partition
    (Kafka compacts per partition), tombstones dropped, in offset order."""
    last: dict[tuple[int, bytes | None], Record] = {}
    for record in records:
        where = (record.partition, record.key)
        last.pop(where, None)  # re-insert: dict order becomes the last write's
        last[where] = record
    return [r for r in last.values() if r.value is not None]


@dataclass
class Placement:
    """Where each copied record goes, and the records that cannot be placed."""

    targets: list[tuple[int, Record]] = field(default_factory=list)
    unplaceable: list[str] = field(default_factory=list)


def place_history(records: Iterable[Record], partitions: int) -> Placement:
    """Every record to its key's partition (a keyless one keeps its partition's number
    modulo the new count: the contract keys every record, this is only a fallback)."""
    placed = Placement()
    for r in records:
        where = r.partition % partitions if r.key is None else partition_for(r.key, partitions)
        placed.targets.append((where, r))
    return placed


def place_changelog(records: Iterable[Record], old_count: int, new_count: int) -> Placement:
    """Each live entry to the partition its source record key hashes to. An entry with
    no source key (written before the header existed), or whose source key does not
    hash to the partition it is in (written for a record sent to a chosen partition,
    e.g. a timer's tick), cannot be placed: reported, not guessed. An entry written for
    a record without a key keeps its partition's number modulo the new count (no key
    routes such a record anywhere in particular)."""
    placed = Placement()
    for r in latest(records):
        source = header(r, SOURCE_KEY)
        if source is None and header(r, UNKEYED) is not None:
            placed.targets.append((r.partition % new_count, r))
        elif source is None:
            placed.unplaceable.append(
                f"[{r.partition}]@{r.offset} {r.key!r}: no {SOURCE_KEY} (written on a "
                "timer's tick, or by a version before the header)"
            )
        elif partition_for(source, old_count) != r.partition:
            placed.unplaceable.append(
                f"[{r.partition}]@{r.offset} {r.key!r}: source key {source!r} is not keyed here"
            )
        else:
            placed.targets.append((partition_for(source, new_count), r))
    return placed


def renamed_headers(record: Record, rename: Callable[[str], str]) -> list[tuple[str, bytes]]:
    """The record's headers, ``original-topic`` pointing at the new topic (so ``streamapp
    dlq replay`` re-drives into the new deployment)."""
    return [
        (k, rename(v.decode()).encode() if k == ORIGINAL_TOPIC else v) for k, v in record.headers
    ]


def undrained(members: Mapping[str, int], behind: Mapping[TopicPartition, int]) -> list[str]:
    """Why the old deployment is not drained (empty: it is): groups with members, and
    partitions with records (other than timer ticks) no group has processed."""
    problems = [f"group {g} has {n} member(s): stop its workers" for g, n in members.items() if n]
    problems += [
        f"{tp.topic}[{tp.partition}]: {n} record(s) not processed"
        for tp, n in sorted(behind.items())
        if n
    ]
    return problems


def consumed_topics(
    committed: Iterable[TopicPartition], existing: Iterable[str], old: Settings
) -> set[str]:
    """The topics the old groups read: the consumed contract topics, their retry and due
    topics (a parked record there is work not done yet), and any other with a commit."""
    present = set(existing)
    names = {tp.topic for tp in committed} | {old.topic(name) for name in CONSUMED}
    names.update(retry_topics_of(present, old))
    return names & present


def is_timer_tick(topic: str, record: Record, timeouts_topic: str) -> bool:
    """A record a worker's timer sent and the new workers' timers send again from the
    tables: every record of sagas.timeouts (or of its retry topics), a housekeeping tick
    (on a due topic, or parked in a retry topic after a failure)."""
    return topics.main_topic(topic) == timeouts_topic or header(record, TICK_HEADER) is not None


# -- I/O -------------------------------------------------------------------------------------
@dataclass
class Report:
    """What was copied: records per new topic."""

    copied: dict[str, int] = field(default_factory=dict)
    committed_groups: list[str] = field(default_factory=list)


def records_of(raw: Sequence[Any]) -> list[Record]:
    """aiokafka's ConsumerRecords as :class:`Record`."""
    return [
        Record(r.partition, r.offset, r.key, r.value, tuple(r.headers or ()), r.timestamp)
        for r in raw
    ]


async def _group_state(
    bootstrap: str, groups: Sequence[str]
) -> tuple[dict[str, int], dict[TopicPartition, int]]:
    """Members per group, and the highest committed offset per partition over the groups."""
    members: dict[str, int] = {}
    committed: dict[TopicPartition, int] = {}
    async with admin_client(bootstrap) as admin:
        # One group per request: aiokafka 0.14 decodes a DescribeGroups v3 answer with the
        # v1 layout, so only the first group of a response is read right.
        for group_id in groups:
            [response] = await admin.describe_consumer_groups([group_id])
            [group, *_] = response.to_object()["groups"]
            members[group_id] = len(group["members"])
        for group_id in groups:
            offsets: Mapping[
                TopicPartition, OffsetAndMetadata
            ] = await admin.list_consumer_group_offsets(group_id)
            for tp, meta in offsets.items():
                if meta.offset >= 0:
                    committed[tp] = max(committed.get(tp, 0), meta.offset)
    return members, committed


async def _behind(
    bootstrap: str,
    partitions: Mapping[str, int],
    committed: Mapping[TopicPartition, int],
    old: Settings,
) -> dict[TopicPartition, int]:
    """Records past the committed offset of each partition of the consumed topics, timer
    ticks not counted."""
    tps = [TopicPartition(t, p) for t, n in partitions.items() for p in range(n)]
    if not tps:
        return {}
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(tps)  # the topics' metadata: unassigned, the lookups took seconds
        starts = await consumer.beginning_offsets(tps)
        ends = await consumer.end_offsets(tps)
    finally:
        await consumer.stop()
    timeouts = old.topic(topics.SAGAS_TIMEOUTS.name)
    done = {tp: max(committed.get(tp, 0), starts[tp]) for tp in tps}
    left = [tp for tp in tps if done[tp] < ends[tp]]
    ticking = {
        tp.topic
        for tp in left
        if tp.topic == timeouts or topics.is_due(tp.topic) or topics.is_waiting_retry(tp.topic)
    }
    read = await read_topics(bootstrap, {t: partitions[t] for t in ticking})
    behind: dict[TopicPartition, int] = {}
    for tp in left:
        if tp.topic in ticking:  # count the work, not the timers' ticks
            behind[tp] = sum(
                not is_timer_tick(tp.topic, r, timeouts)
                for r in records_of(read[tp.topic])
                if r.partition == tp.partition and r.offset >= done[tp]
            )
        else:
            behind[tp] = ends[tp] - done[tp]
    return behind


async def _wait_for_leaders(bootstrap: str, partitions: Mapping[str, int]) -> None:
    """Until every new partition's leader answers (a ListOffsets request goes to the
    leader; aiokafka retries it): a produce request sent before then is refused with
    NotLeaderForPartition, retried with a warning per batch. The wait's own retries are
    expected: aiokafka's warning per retry is silenced meanwhile."""
    tps = [TopicPartition(t, p) for t, n in partitions.items() for p in range(n)]
    fetcher = logging.getLogger("aiokafka.consumer.fetcher")
    level = fetcher.level
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        fetcher.setLevel(logging.CRITICAL)  # it logs each retried NotLeader as an error
        consumer.assign(tps)
        await consumer.end_offsets(tps)
    finally:
        fetcher.setLevel(level)
        await consumer.stop()


async def _copy(
    producer: AIOKafkaProducer, target: str, placed: Placement, rename: Callable[[str], str]
) -> int:
    sends = [
        await producer.send(
            target,
            value=r.value,
            key=r.key,
            partition=where,
            headers=renamed_headers(r, rename),
            timestamp_ms=r.timestamp_ms,
        )
        for where, r in placed.targets
    ]
    await asyncio.gather(*sends)
    return len(sends)


async def _commit_new_groups(
    bootstrap: str, plan_: Plan, new_partitions: Mapping[str, int]
) -> list[str]:
    """Commit each new group at the end of every copied topic its old group read."""
    moved = {m.source: m.target for m in plan_.moves}
    groups: list[str] = []
    old_ids = service_app_ids(plan_.old_app_id)
    new_ids = service_app_ids(plan_.new_app_id)
    async with admin_client(bootstrap) as admin:
        reads = {
            old: {tp.topic for tp in (await admin.list_consumer_group_offsets(old))}
            for old in old_ids
        }
    for old, new in zip(old_ids, new_ids, strict=True):
        targets = sorted({moved[t] for t in reads[old] if t in moved})
        if not targets:
            continue
        tps = [TopicPartition(t, p) for t in targets for p in range(new_partitions[t])]
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, group_id=new, enable_auto_commit=False
        )
        await consumer.start()
        try:
            consumer.assign(tps)
            ends = await consumer.end_offsets(tps)
            await consumer.commit({tp: end for tp, end in ends.items()})
        finally:
            await consumer.stop()
        groups.append(new)
    return groups


async def repartition(old: Settings, new_prefix: str, new_app_id: str, partitions: int) -> Report:
    """Check the drain, then copy and commit as the module says."""
    if partitions < 1:
        raise RepartitionError("partitions must be >= 1")
    bootstrap = old.bootstrap
    infos = {i.name: i for i in await describe_topics(bootstrap)}
    moves = plan(infos, old, new_prefix, new_app_id)
    members, committed = await _group_state(bootstrap, group_ids(old.app_id))
    behind: dict[TopicPartition, int] = {}
    if not any(members.values()):  # while workers run, their offsets move: members first
        reads = consumed_topics(committed, infos, old)
        behind = await _behind(bootstrap, {t: infos[t].partitions for t in reads}, committed, old)
    problems = undrained(members, behind)
    if problems:
        raise RepartitionError("the old deployment is not drained:\n  " + "\n  ".join(problems))
    new_partitions: dict[str, int] = {}
    specs = []
    for move in moves.moves:
        info = infos[move.source]
        # every topic gets the new count (a deployment's one-partition participant topics
        # too), but the registry's log: it has one partition so every request has one order
        count = 1 if move.kind == "single" else partitions
        new_partitions[move.target] = count
        config = {
            k: v
            for k, v in info.config.items()
            if k in ("cleanup.policy", "retention.ms", "max.message.bytes")
        }
        specs.append(topics.TopicSpec(move.target, count, info.replication_factor, config))
    existing = [s.name for s in specs if s.name in infos]
    if existing:
        raise RepartitionError(f"the new topics exist already: {', '.join(existing[:SHOWN])}")
    placements: dict[Move, Placement] = {}
    everything = await read_topics(
        bootstrap, {m.source: infos[m.source].partitions for m in moves.moves}
    )
    for move in moves.moves:
        records = records_of(everything[move.source])
        count = new_partitions[move.target]
        if move.kind == "changelog":
            placed = place_changelog(records, infos[move.source].partitions, count)
        else:
            placed = place_history(records, count)
        if placed.unplaceable:
            shown = "\n  ".join(placed.unplaceable[:SHOWN])
            raise RepartitionError(
                f"{move.source}: {len(placed.unplaceable)} entry(ies) cannot be placed:\n  {shown}"
            )
        if move.source == in_flight_changelog(old.app_id) and placed.targets:
            raise RepartitionError(
                f"{len(placed.targets)} saga(s) in flight: wait until GET /sagas?state=IN_FLIGHT "
                "is empty (and streamapp verify passes) before stopping the workers"
            )
        placements[move] = placed
    await ensure_topics(bootstrap, specs)
    await _wait_for_leaders(bootstrap, new_partitions)
    report = Report()
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        max_request_size=topics.MAX_RECORD_BYTES + 64 * 1024,
        linger_ms=5,
    )
    await producer.start()
    try:
        for move, placed in placements.items():
            report.copied[move.target] = await _copy(producer, move.target, placed, moves.rename)
        await producer.flush()
    finally:
        await producer.stop()
    report.committed_groups = await _commit_new_groups(bootstrap, moves, new_partitions)
    return report
