"""The faust.App of the service a process runs: settings wiring, topic declaration
(from the catalogue, streamapp.topics) and provisioning, readiness.

Each service's package (``SERVICE_MODULES``) imports ``app`` from here in its agents.py
and views.py and registers its agents, tables and views on it; faust discovers them
through ``autodiscover`` when a worker starts (``faust -A streamapp.app worker``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, cast

import faust
from faust.types import EventT, TableT, TopicT

from streamapp import topics
from streamapp.health import ReadinessInputs, readiness
from streamapp.kafka import (
    assignment_heartbeat,
    bulk_restore,
    faust_patches,
    local_state,
    shutdown,
    stop_wait,
    table_start,
)
from streamapp.kafka.lag import consumer_lag
from streamapp.kafka.producer import IdempotentProducer
from streamapp.kafka.recovery import recovery_active, recovery_remaining
from streamapp.kafka.source_key import SourceKeyedTable
from streamapp.kafka.topics import ensure_topics, merge_specs
from streamapp.kafka.traced import TracedTopic
from streamapp.logs import faust_logging_options
from streamapp.metrics import AppMetrics, setup_faust_sensor
from streamapp.resilience.relay import RetryRelay
from streamapp.settings import Settings, load_settings
from streamapp.topics import TopicSpec
from streamapp.tracing.export import SpanSink
from streamapp.web.errors import web_application_options

log = logging.getLogger(__name__)

faust_patches.apply()  # before any consumer exists: see the module for the bug
bulk_restore.apply_patch()  # tables restored in batches: see the module
stop_wait.apply()  # the same: waiting at stop/rebalance for copies nobody processes
shutdown.apply()  # leave the group ~2 s sooner on SIGTERM: see the module
assignment_heartbeat.apply()  # no eviction while faust's assignment callback runs
table_start.apply()  # tables start without faust's fixed one-second pause

#: Feature modules faust scans for agents, tables, pages and timers, per service. Each
#: service is its own Faust app (consumer group, tables, web server, Procfile entry).
SERVICE_MODULES = {
    "orders": [
        "streamapp.web.health",
        "streamapp.probe",
        "streamapp.orders",
        "streamapp.saga",
        "streamapp.registry",
        "streamapp.tracing",
        "streamapp.dashboard",
    ],
    "inventory": ["streamapp.web.health", "streamapp.inventory"],
    "payments": ["streamapp.web.health", "streamapp.payments"],
    "shipping": ["streamapp.web.health", "streamapp.shipping"],
}

_ACKS = {"0": 0, "1": 1, "all": -1}


def faust_options(settings: Settings) -> dict[str, Any]:
    """Translate streamapp settings into faust.App keyword arguments."""
    return {
        "broker": ";".join(f"kafka://{server}" for server in settings.bootstrap.split(",")),
        "store": "rocksdb://",
        "datadir": str(settings.worker_data_dir),
        "autodiscover": SERVICE_MODULES[settings.service],
        # No origin: faust would scan the whole origin package on top of the list, and
        # each service must load only its own agents, tables and views.
        "origin": None,
        # faust listens on web_bind (its default: every interface); web_host is only the
        # name advertised to peers. Loopback unless the operator opens it.
        "web_bind": settings.web_bind,
        "web_host": settings.web_host,
        "web_port": settings.web_port,
        "canonical_url": f"http://{settings.web_host}:{settings.web_port}",
        "topic_partitions": settings.partitions,
        "topic_replication_factor": settings.topic_replication_factor,
        "processing_guarantee": settings.processing_guarantee,
        "producer_acks": _ACKS[settings.producer_acks],
        "producer_linger": settings.producer_linger_ms / 1000.0,
        "producer_compression_type": (
            None if settings.producer_compression == "none" else settings.producer_compression
        ),
        # JSON values (faust's json codec uses orjson when it is installed), raw keys:
        # outside clients key records by plain UTF-8 strings.
        "key_serializer": "raw",
        "value_serializer": "json",
        "web_enabled": True,
        # Text or JSON lines, each naming the record it is about (streamapp.logs).
        **faust_logging_options(settings),
        # Every send carries the current span's traceparent (streamapp.tracing.context).
        "Topic": TracedTopic,
        # Changelog records name their source record's key (streamapp.kafka.source_key).
        "Table": SourceKeyedTable,
        # JSON errors on every route, request bodies bounded (streamapp.web.errors).
        "web_application_options": web_application_options(settings.web_max_body_bytes),
        # faust's built-in pages would expose raw tables (/table), the cluster layout
        # (/router) and internals unauthenticated: a worker serves streamapp's routes only.
        "web_tables_enabled": False,
        "web_router_enabled": False,
        "web_graph_enabled": False,
        "web_stats_enabled": False,
        # How long a dead worker's partitions wait (docs/scaling.md "Failover").
        "broker_session_timeout": settings.session_timeout_ms / 1000.0,
        "broker_heartbeat_interval": settings.consumer_heartbeat_interval_ms / 1000.0,
        "consumer_group_instance_id": settings.group_instance_id,
        "broker_commit_interval": settings.consumer_commit_interval_ms / 1000.0,
        # Large enough to dead-letter the largest record a topic accepts (4 MiB commands).
        "producer_max_request_size": topics.MAX_RECORD_BYTES + 64 * 1024,
    }


class StreamApp(faust.App):
    """faust.App that knows streamapp's settings, topics, metrics and readiness."""

    def __init__(self, settings: Settings, **overrides: Any) -> None:
        self.settings = settings
        self.metrics = AppMetrics()
        #: Where finished record spans go (OTLP export when configured), else None.
        self.span_sink: SpanSink | None = None
        #: Messages of batches agents are processing now (see in_flight).
        self.messages_in_flight: set[Any] = set()
        self.declared_topics: list[TopicSpec] = []
        self._assignment_received = False
        self._ready_checks: dict[str, Callable[[], bool]] = {}
        #: The hold on the data directory while the worker runs (kafka.local_state).
        self.local_claim: local_state.Claim | None = None
        self.send_errors = local_state.SendErrors()
        super().__init__(settings.service_app_id, **{**faust_options(settings), **overrides})
        setup_faust_sensor(self, self.metrics.registry)
        self.sensors.add(self.send_errors)  # before any send: its state is per sensor
        self.metrics.consumer_lag.read_from(lambda: consumer_lag(self))
        self.metrics.recovery_remaining.read_from(lambda: recovery_remaining(self))
        self.metrics.recovery_active.read_from(lambda: recovery_active(self))
        self.on_partitions_assigned.connect(self._on_assigned)
        self.topics_ensured = asyncio.Event()
        self.retry_relay = RetryRelay(
            settings.bootstrap,
            f"{self.conf.id}-retry-relay",
            self.waiting_retry_topics,
            self.topics_ensured,
            session_timeout_ms=settings.session_timeout_ms,
            heartbeat_interval_ms=settings.consumer_heartbeat_interval_ms,
        )
        # faust starts instances too (App._prepare_subservice), though its annotation says class.
        self.service(cast(Any, self.retry_relay))
        self.metrics.ready.set_function(lambda: float(readiness(self.readiness_inputs())[0]))
        self.metrics.assigned_partitions.set_function(
            lambda: float(self.readiness_inputs().assigned_partitions)
        )

    def _new_producer(self) -> Any:
        """faust's aiokafka producer, idempotent under acks=all (streamapp.kafka.producer)."""
        return IdempotentProducer(self.transport, loop=self.loop, beacon=self.beacon)

    # -- topics ------------------------------------------------------------------------
    def contract_topic(
        self,
        topic: topics.Topic,
        *,
        value_type: Any = None,
        key_type: Any = None,
        value_serializer: str = "raw",
    ) -> TopicT:
        """A faust topic for a catalogued contract topic (prefix applied), declared for
        creation with the partitions and config the catalogue gives it.

        Values default to raw bytes: agents decode them themselves, so a poison record
        is the agent's to dead-letter instead of faust's to drop. A consumed topic gets
        its retry topics and DLQ from its ResilientConsumer; a topic catalogued with
        ``dead_letters`` declares its DLQ here too, so an app that only sends to it lists
        it as well.
        """
        spec = topic.spec(
            self.settings.topic(topic.name),
            self.settings.partitions,
            self.settings.topic_replication_factor,
        )
        self.declared_topics.append(spec)
        if topic.dead_letters:
            self.declared_topics.append(topics.dlq_spec(spec))
        return self.topic(
            spec.name,
            key_type=key_type,
            value_type=value_type,
            partitions=spec.partitions,
            replicas=spec.replication_factor,
            config=dict(spec.config) or None,
            key_serializer="raw",
            value_serializer=value_serializer,
        )

    def declare_retry_topics(self, topic_name: str, attempts: int) -> None:
        """The retry, due and dead-letter topics of a declared topic an agent consumes."""
        spec = next(s for s in self.declared_topics if s.name == topic_name)
        self.declared_topics.extend(topics.retry_specs(spec, attempts))

    def waiting_retry_topics(self) -> list[str]:
        """The ``<topic>.retry.<n>`` topics of this app (what the retry relay reads)."""
        return sorted({s.name for s in self.declared_topics if topics.is_waiting_retry(s.name)})

    def raw_topic(self, name: str) -> TopicT:
        """A faust topic by full name with raw bytes keys and values (not declared)."""
        return self.topic(
            name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
        )

    def dead_letter_topic(self, topic_name: str) -> TopicT:
        """The DLQ of one of this app's topics (declared with it)."""
        return self.raw_topic(topics.dlq_topic(topic_name))

    def keyed_table(
        self,
        name: str,
        *,
        default: Any = None,
        value_type: Any = None,
        partitions: int | None = None,
    ) -> TableT[bytes, Any]:
        """A changelog-backed table keyed by the raw UTF-8 bytes of the record key.

        faust serialises ``str`` table keys as JSON (``"k"`` with quotes), so the router
        behind ``table_route`` would hash a different byte string than the producer did
        and forward view requests to a worker that does not own the key. With bytes keys
        the source topic, the changelog and the router agree on every key's partition.
        """
        return self.Table(
            name, key_type=bytes, value_type=value_type, default=default, partitions=partitions
        )

    def topic_specs(self) -> list[TopicSpec]:
        """Every topic this app uses: declared ones, table changelogs, faust's leader topic.

        Discovery (importing the feature modules) is idempotent, so callers outside a
        worker (CLI, runner) get the full list too.
        """
        self.discover()
        replication = self.settings.topic_replication_factor
        specs = list(self.declared_topics)
        for table in self.tables.values():
            specs.append(
                TopicSpec(
                    name=table.changelog_topic.get_topic_name(),
                    partitions=table.partitions or self.settings.partitions,
                    replication_factor=replication,
                    config=topics.COMPACT,
                )
            )
        specs.append(TopicSpec(topics.leader_topic(self.conf.id), 1, replication))
        return merge_specs(specs)

    async def on_first_start(self) -> None:
        """Create missing topics before the consumer subscribes (auto-create is off);
        distrust the local tables of a run that did not stop cleanly (local_state)."""
        self.local_claim = local_state.claim(
            self.settings.worker_data_dir, Path(self.conf.tabledir)
        )
        if self.local_claim.deleted:
            log.warning(
                "the last run on %s did not stop cleanly: its table databases were "
                "deleted and are restored from the changelogs",
                self.settings.worker_data_dir,
            )
        _undo_spinner_log_level(self.settings.log_level)
        if self.settings.otlp_endpoint:  # the SDK is imported only then
            from streamapp.tracing.otlp import OtlpExport

            # Flushed and stopped after the agents (the app's exit stack closes last).
            self.span_sink = await self.add_async_context(OtlpExport.for_app(self))
        await super().on_first_start()
        report = await ensure_topics(self.settings.bootstrap, self.topic_specs())
        if report.created:
            log.info("created topics: %s", ", ".join(report.created))
        self.topics_ensured.set()

    async def on_shutdown(self) -> None:
        """Stopped cleanly (consumer, producer flushed, tables closed): the local
        tables may be trusted at the next start."""
        await super().on_shutdown()
        claim = self.local_claim
        if claim is None:
            return
        buffered = self._producer.buffer.size if self._producer is not None else 0
        if self.send_errors.failed or buffered:
            log.warning(
                "not a clean stop (%d failed sends, %d records unsent): the tables will "
                "be restored from the changelogs at the next start",
                self.send_errors.failed,
                buffered,
            )
            return
        claim.release()

    @contextlib.contextmanager
    def in_flight(self, events: Sequence[EventT[Any]]) -> Iterator[None]:
        """A batch an agent is processing: a stop or rebalance waits for it
        (streamapp.kafka.stop_wait) as it waits for a one-by-one agent's record."""
        messages = [event.message for event in events]
        self.messages_in_flight.update(messages)
        try:
            yield
        finally:
            self.messages_in_flight.difference_update(messages)

    async def hand_over_table_writes(self) -> None:
        """Wait until this record's table writes are in the Kafka producer.

        Table assignments queue their changelog records in faust's ProducerBuffer. faust
        flushes that buffer before committing offsets, but gives up after 0.1 s without
        progress; draining it before the record is acked (the next loop iteration) makes
        sure an offset is never committed ahead of its changelog records.
        """
        buffer = self.producer.buffer
        while buffer.size:
            await buffer.flush()

    def owned_partitions(self, topic_name: str) -> list[int]:
        """Partitions of a topic (or a table's changelog) this worker actively owns;
        standby copies excluded."""
        actives = self.assignor.assigned_actives()
        return sorted({tp.partition for tp in actives if tp.topic == topic_name})

    def peer_urls(self, table_name: str) -> list[str]:
        """Base URLs of the other workers that own partitions of a table (for views
        that gather from every worker)."""
        return [
            str(url).rstrip("/")
            for url, assigned in self.router.table_metadata(table_name).items()
            if any(assigned.values()) and str(url).rstrip("/") != self.own_url
        ]

    def key_owner(self, table_name: str, key: str) -> str | None:
        """The base URL of the worker that actively owns a record key's partition of a
        table (where ``table_route`` forwards a request for it; this worker's own URL
        included); None while that is unknown (no assignment or metadata yet)."""
        try:
            owner = self.router.key_store(table_name, key)
        except (KeyError, TypeError):  # unassigned partition / no topic metadata yet
            return None
        return str(owner).rstrip("/")

    @property
    def own_url(self) -> str:
        """This worker's base URL as its peers know it (``canonical_url``)."""
        return str(self.conf.canonical_url).rstrip("/")

    # -- readiness ---------------------------------------------------------------------
    async def _on_assigned(self, sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        self._assignment_received = True
        self.metrics.rebalances.inc()

    def require_for_readiness(self, waiting_for: str, check: Callable[[], bool]) -> None:
        """/ready also waits until `check()` holds (a service's own start-up, e.g. the
        reply consumer that HTTP commands need); `waiting_for` is the reason shown."""
        self._ready_checks[waiting_for] = check

    def readiness_inputs(self) -> ReadinessInputs:
        """What /ready decides on, read from faust's consumer and recovery state."""
        recovery = cast(Any, self.tables).recovery  # TableManager has it; its interface not
        try:
            assigned = len(self.consumer.assignment())
        except Exception:  # the consumer is not started yet
            assigned = 0
        return ReadinessInputs(
            assignment_received=self._assignment_received,
            rebalancing=bool(self.rebalancing),
            recovery_completed=recovery.completed.is_set(),
            in_recovery=bool(recovery.in_recovery),
            assigned_partitions=assigned,
            pending=tuple(reason for reason, check in self._ready_checks.items() if not check()),
        )


def _undo_spinner_log_level(log_level: str) -> None:
    """Put the root logger back to the configured level.

    At warn/error/crit, faust's worker sets the root logger to DEBUG so that every log
    call can turn its terminal spinner; every debug() call in faust and aiokafka then
    builds a LogRecord that is thrown away. Measured with bench/relay.py: -25% throughput.
    """
    level = logging.getLevelName(log_level.upper())
    if isinstance(level, int) and logging.root.level < level:
        logging.root.setLevel(level)


def create_app(settings: Settings | None = None, **overrides: Any) -> StreamApp:
    """Build an app from settings (loaded from config/ and the environment by default)."""
    return StreamApp(settings or load_settings(), **overrides)


app = create_app()
