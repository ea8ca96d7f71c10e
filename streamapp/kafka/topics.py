"""Topic provisioning: every topic streamapp uses is created explicitly, idempotently.

Auto-creation is off on the local broker (and should be in production), so a topic the
app forgot to declare fails loudly instead of appearing with broker defaults.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError, for_code

from streamapp.topics import TopicSpec as TopicSpec

log = logging.getLogger(__name__)

LEADER_TIMEOUT_S = 30.0
SHOWN_CONFIGS = ("cleanup.policy", "retention.ms", "min.insync.replicas", "max.message.bytes")


@dataclass(frozen=True)
class TopicInfo:
    """A topic as the cluster has it."""

    name: str
    partitions: int
    replication_factor: int
    config: Mapping[str, str]


@dataclass
class ProvisionReport:
    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)


class TopicError(RuntimeError):
    """A topic could not be created or described."""


@contextlib.asynccontextmanager
async def admin_client(bootstrap: str) -> AsyncIterator[AIOKafkaAdminClient]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)
    await admin.start()
    try:
        yield admin
    finally:
        await admin.close()


def merge_specs(specs: Iterable[TopicSpec]) -> list[TopicSpec]:
    """One spec per name; two different specs for one name is a programming error."""
    by_name: dict[str, TopicSpec] = {}
    for spec in specs:
        seen = by_name.setdefault(spec.name, spec)
        if seen != spec:
            raise TopicError(f"topic {spec.name!r} declared twice differently: {seen} / {spec}")
    return sorted(by_name.values(), key=lambda s: s.name)


async def ensure_topics(bootstrap: str, specs: Iterable[TopicSpec]) -> ProvisionReport:
    """Create the missing topics; report existing ones whose partition count differs.

    Existing topics are never altered: adding partitions moves keys between partitions,
    which must be a deliberate operator step (see README 'Scaling').
    """
    wanted = merge_specs(specs)
    report = ProvisionReport()
    async with admin_client(bootstrap) as admin:
        current = {t.name: t for t in await _describe(admin, [s.name for s in wanted])}
        missing = [s for s in wanted if s.name not in current]
        if missing:
            response = await admin.create_topics(
                [
                    NewTopic(
                        s.name, s.partitions, s.replication_factor, topic_configs=dict(s.config)
                    )
                    for s in missing
                ]
            )
            for name, code, *rest in response.topic_errors:
                error = for_code(code)
                if code == 0:
                    report.created.append(name)
                elif error is TopicAlreadyExistsError:  # a peer worker won the race
                    report.existing.append(name)
                else:
                    message = rest[0] if rest else ""
                    raise TopicError(f"cannot create topic {name}: {error.__name__} {message}")
        if report.created:
            await _wait_for_leaders(admin, report.created)
        for spec in wanted:
            info = current.get(spec.name)
            if info is None:
                continue
            report.existing.append(spec.name)
            if info.partitions != spec.partitions:
                report.mismatched.append(spec.name)
                log.warning(
                    "topic %s has %d partitions, streamapp expects %d",
                    spec.name,
                    info.partitions,
                    spec.partitions,
                )
    return report


async def _wait_for_leaders(admin: AIOKafkaAdminClient, names: list[str]) -> None:
    """Return once every partition of the new topics has a leader.

    CreateTopics answers before leaders are elected; producing at once earns
    NotLeaderForPartition retries and consumers may be assigned leaderless partitions.
    """
    leaderless = names
    try:
        async with asyncio.timeout(LEADER_TIMEOUT_S):
            while leaderless:
                topics = await admin.describe_topics(names)
                leaderless = [
                    t["topic"]
                    for t in topics
                    if t["error_code"] != 0 or any(p["leader"] < 0 for p in t["partitions"])
                ]
                if leaderless:
                    await asyncio.sleep(0.1)
    except TimeoutError:
        raise TopicError(
            f"no partition leaders after {LEADER_TIMEOUT_S:.0f} s for: {leaderless}"
        ) from None


async def _describe(admin: AIOKafkaAdminClient, names: list[str] | None) -> list[TopicInfo]:
    topics = await admin.describe_topics(names)
    found = [t for t in topics if t["error_code"] == 0]
    if not found:
        return []
    configs: dict[str, dict[str, str]] = {t["topic"]: {} for t in found}
    responses = await admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, t["topic"]) for t in found]
    )
    for response in responses:
        for resource in response.to_object()["resources"]:
            configs[resource["resource_name"]] = {
                entry["config_names"]: entry["config_value"]
                for entry in resource["config_entries"]
                if entry["config_names"] in SHOWN_CONFIGS
            }
    return sorted(
        (
            TopicInfo(
                name=t["topic"],
                partitions=len(t["partitions"]),
                replication_factor=len(t["partitions"][0]["replicas"]) if t["partitions"] else 0,
                config=configs.get(t["topic"], {}),
            )
            for t in found
        ),
        key=lambda info: info.name,
    )


async def describe_topics(bootstrap: str, names: list[str] | None = None) -> list[TopicInfo]:
    """Topics as the cluster has them (all non-internal ones when names is None)."""
    async with admin_client(bootstrap) as admin:
        infos = await _describe(admin, names)
    return [i for i in infos if not i.name.startswith("__")]


async def topic_partitions(bootstrap: str, topic: str) -> list[int]:
    """The partition numbers of a topic; TopicError if it does not exist."""
    async with admin_client(bootstrap) as admin:
        [described] = await admin.describe_topics([topic])
    partitions = sorted(p["partition"] for p in described["partitions"])
    if described["error_code"] != 0 or not partitions:
        raise TopicError(f"topic {topic} has no partitions (error {described['error_code']})")
    return partitions
