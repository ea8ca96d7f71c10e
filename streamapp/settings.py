"""Typed settings: defaults in ``config/streamapp.toml``, each overridable by an env var.

Every setting is one flat field. In the TOML file a field may sit in a table whose name
is its prefix (``[local_kafka] port = 1`` is the field ``local_kafka_port``); its
environment variable is ``STREAMAPP_`` + the field name in upper case
(``STREAMAPP_LOCAL_KAFKA_PORT``). Precedence: env var > TOML file > the defaults below.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from streamapp.resilience.policy import RetryPolicy

ENV_PREFIX = "STREAMAPP_"
CONFIG_ENV = "STREAMAPP_CONFIG"
DEFAULT_CONFIG = Path("config/streamapp.toml")

PROCESSING_GUARANTEES = ("at_least_once", "exactly_once")
PRODUCER_ACKS = ("0", "1", "all")
COMPRESSIONS = ("none", "gzip", "lz4", "zstd", "snappy")
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
LOG_FORMATS = ("text", "json")
#: The process types: one Faust app each, in Procfile order (which gives their ports).
SERVICES = ("orders", "inventory", "payments", "shipping")
#: honcho gives process type i the ports base + 100 * i.
SERVICE_PORT_STEP = 100
#: Node k of the embedded Kafka cluster listens on the configured ports + 2(k-1).
LOCAL_KAFKA_PORT_STEP = 2
#: faust's broker_request_timeout default (90 s): the session timeout may not exceed it.
FAUST_REQUEST_TIMEOUT_MS = 90_000
#: Automatic consumer session timeouts (docs/scaling.md "Failover"): the embedded Kafka
#: allows 1 s (group.min.session.timeout.ms); a stock Kafka refuses less than 6 s.
EMBEDDED_SESSION_TIMEOUT_MS = 3000
EMBEDDED_MIN_SESSION_MS = 1000  # streamapp/local/broker.py: group.min.session.timeout.ms
STOCK_SESSION_TIMEOUT_MS = 6000


class SettingsError(ValueError):
    """A setting has a value that cannot be used; the message names where it came from."""


def setting(default: Any, doc: str) -> Any:
    """A settings field with its documentation (`streamapp settings` prints it)."""
    return field(default=default, metadata={"doc": doc})


@dataclass(frozen=True)
class Settings:
    """The one settings object; see README 'Configuration' for the table of all fields."""

    app_id: str = setting(
        "streamapp",
        "Faust app id of the orders service; the others use <app_id>-<service>.",
    )
    service: str = setting(
        "orders", "The service this process runs: orders, inventory, payments or shipping."
    )
    seeds_file: Path = setting(
        Path("config/seeds.toml"), "Stock, credit limits and shipping countries to start from."
    )
    schemas_dir: Path = setting(
        Path("config/schemas"),
        "JSON Schemas of every command and event type (<Type>.json), registered by the "
        "orders workers at start-up.",
    )
    saga_step_timeout_ms: int = setting(
        60000,
        "A saga step without an answer this long times out (compensation starts). Must "
        "exceed the retry budget (every retry delay at its longest), checked at start-up.",
    )
    saga_compensation_timeout_ms: int = setting(
        10000,
        "A compensation, ConfirmOrder, CommitInventory or the saga's CancelOrder without "
        "confirmation this long is sent again (same command id); end commands and "
        "ConfirmOrder then wait twice as long each time, up to 16x.",
    )
    saga_max_compensation_attempts: int = setting(
        5, "Compensation sends before a saga gives up as FAILED."
    )
    bootstrap_servers: str = setting(
        "", "Kafka bootstrap servers (host:port,...). Empty: the embedded local broker."
    )
    topic_prefix: str = setting("", "Prepended to every topic name (e.g. 'staging.').")
    partitions: int = setting(8, "Partition count of every topic streamapp creates.")
    replication_factor: int = setting(
        0,
        "Replication factor of every topic streamapp creates. 0: automatic, the embedded "
        "Kafka's node count up to 3 (1, or 3 with local_kafka_nodes=3); 1 with external "
        "bootstrap servers.",
    )
    web_host: str = setting(
        "127.0.0.1",
        "Host name this worker advertises to its peers (table_route forwards requests there).",
    )
    web_bind: str = setting(
        "127.0.0.1",
        "Address the web server listens on: 127.0.0.1 (this host only) or e.g. 0.0.0.0 "
        "(every interface: see README 'Security' before opening it).",
    )
    web_port: int = setting(6066, "Port of this worker's web server (one per worker process).")
    web_max_body_bytes: int = setting(
        1024 * 1024, "Largest HTTP request body a worker accepts (larger: 413 JSON error)."
    )
    state_retention_ms: int = setting(
        7 * 24 * 3600 * 1000,
        "How long command outcomes, participant answers and ended sagas' working state are "
        "kept: a command id repeated within this window is recognised as a duplicate.",
    )
    data_dir: Path = setting(
        Path("tables"), "Root of the table directories: a worker uses <dir>/<app_id>-<web_port>."
    )
    processing_guarantee: str = setting(
        "at_least_once", "Faust processing guarantee: at_least_once or exactly_once."
    )
    producer_acks: str = setting("all", "Producer acks: 0, 1 or all.")
    producer_linger_ms: int = setting(5, "Producer linger in milliseconds (batching delay).")
    producer_compression: str = setting(
        "none",
        "Producer compression: none, gzip, lz4, zstd or snappy. none by measurement on two "
        "shared cores (bench/compression.py: zstd saves 78-86 % of the bytes, costs 28 % "
        "of the saga rate there).",
    )
    consumer_session_timeout_ms: int = setting(
        0,
        "Consumer group session timeout: how soon a crashed (kill -9) worker's partitions "
        "move to the others (faust's default is 60 s). 0: automatic, 3000 with the "
        "one-node embedded Kafka (its group.min.session.timeout.ms is 1 s), 6000 with "
        "its 3-node cluster (not yet run at 3 s) and with external bootstrap servers (a "
        "stock Kafka refuses less). The broker must allow it.",
    )
    consumer_heartbeat_interval_ms: int = setting(
        1000,
        "Consumer heartbeat interval: also how soon a live worker hears of a rebalance "
        "(e.g. after another one left). At most a third of the session timeout.",
    )
    consumer_static_membership: bool = setting(
        False,
        "Static group membership (KIP-345): group.instance.id <service app id>-<web_host>-"
        "<web_port>. A worker restarted within the session timeout gets its partitions "
        "back without a rebalance, but a stopped worker no longer leaves the group: its "
        "partitions wait the session timeout even after SIGTERM.",
    )
    consumer_commit_interval_ms: int = setting(
        2800, "How often processed offsets are committed (bounds replays after a crash)."
    )
    snapshot_every: int = setting(100, "Event store: write an aggregate snapshot every N events.")
    processing_timeout_ms: int = setting(
        30000, "An agent taking longer than this on one record fails it (then retried)."
    )
    retry_base_ms: int = setting(1000, "Delay before the first retry of a failed record.")
    retry_factor: float = setting(2.0, "Each further retry waits this many times longer ...")
    retry_cap_ms: int = setting(300000, "... but never longer than this.")
    retry_jitter: float = setting(
        0.1, "Each delay varies by up to this fraction either way (spreads retry bursts)."
    )
    retry_max_attempts: int = setting(
        5, "Retries (<topic>.retry.1 .. .retry.N) before a record goes to <topic>.dlq."
    )
    inject_failure_rate: float = setting(
        0.0, "Participant services: fail this fraction of commands transiently (tests, demos)."
    )
    inject_failure_commands: str = setting(
        "",
        "Participant services: inject only into these command types (comma-separated; "
        "empty: all but seeding).",
    )
    inject_failures_first_attempts: int = setting(
        0, "Participant services: fail every command's first N attempts (tests, demos)."
    )
    inject_failure_max_per_record: int = setting(
        0,
        "Participant services: the rate fails one record at most N times (0: no limit), "
        "e.g. retry_max_attempts so that injected failures are transient within the "
        "retry budget and never reach the DLQ.",
    )
    http_command_timeout_ms: int = setting(
        10000, "How long POST /orders waits for the command's reply before a 504."
    )
    log_level: str = setting("info", "Log level: debug, info, warning, error or critical.")
    log_format: str = setting(
        "text",
        "Log lines: text, or json (one object per line with time, level, logger, message "
        "and, for a line about a record, its correlationId and traceId).",
    )
    schema_validation: bool = setting(
        True,
        "Validate commands and events against their registered schemas (off: only for "
        "measuring what validation costs; the registry still runs).",
    )
    table_bulk_restore: bool = setting(
        True,
        "Restore tables from their changelogs in bulk with a plain Kafka consumer before "
        "faust's record-at-a-time recovery (streamapp.kafka.bulk_restore; bench/restore.py).",
    )
    tracing_enabled: bool = setting(
        True,
        "Orders service: build a trace per correlation id from every event topic "
        "(GET /traces, the dashboard, flow metrics). traceparent headers are always sent.",
    )
    trace_retention_ms: int = setting(
        24 * 3600 * 1000, "How long a trace is kept after its first event (then deleted)."
    )
    trace_stall_ms: int = setting(
        30000,
        "A trace whose saga is not terminal and that got no event this long is STALLED.",
    )
    dashboard_workers: str = setting(
        "",
        "Orders service: base URLs of every worker the dashboard shows (comma-separated). "
        "Empty: the orders workers known from the cluster, and the first worker of each "
        "other service at the Procfile's ports (the lowest orders port + 100 per service).",
    )
    otlp_endpoint: str = setting(
        "",
        "OTLP/HTTP traces endpoint (e.g. http://127.0.0.1:4318/v1/traces): each processed "
        "record becomes a span parented by its traceparent. Empty: no export (default).",
    )
    local_kafka_version: str = setting(
        "4.1.1", "Apache Kafka version the embedded broker fetches from Maven Central."
    )
    local_kafka_host: str = setting("127.0.0.1", "Loopback address of the embedded broker.")
    local_kafka_port: int = setting(19092, "Client port of the embedded broker.")
    local_kafka_controller_port: int = setting(19093, "KRaft controller port of the broker.")
    local_kafka_nodes: int = setting(
        1,
        "Nodes of the embedded Kafka (each broker+controller). 1: one broker on the ports "
        "above; N > 1: node k on local_kafka_port + 2(k-1) and local_kafka_controller_port "
        "+ 2(k-1), topics with replication factor min(N, 3) and min.insync.replicas one less.",
    )
    local_kafka_heap: str = setting("512m", "JVM heap (-Xmx) of the embedded broker.")
    local_kafka_state_dir: Path = setting(
        Path("var/kafka"), "Where the embedded broker keeps config, data, pid file and logs."
    )
    local_kafka_cache_dir: Path = setting(
        Path("~/.cache/streamapp/kafka"),
        "Where the fetched Kafka jars are cached (outside the working tree).",
    )

    def __post_init__(self) -> None:
        _check_choice("processing_guarantee", self.processing_guarantee, PROCESSING_GUARANTEES)
        _check_choice("producer_acks", self.producer_acks, PRODUCER_ACKS)
        _check_choice("producer_compression", self.producer_compression, COMPRESSIONS)
        _check_choice("log_level", self.log_level, LOG_LEVELS)
        _check_choice("log_format", self.log_format, LOG_FORMATS)
        _check_choice("service", self.service, SERVICES)
        for name in (
            "partitions",
            "local_kafka_nodes",
            "web_port",
            "local_kafka_port",
            "local_kafka_controller_port",
            "consumer_heartbeat_interval_ms",
            "consumer_commit_interval_ms",
            "snapshot_every",
            "http_command_timeout_ms",
            "processing_timeout_ms",
            "saga_step_timeout_ms",
            "saga_compensation_timeout_ms",
            "saga_max_compensation_attempts",
            "web_max_body_bytes",
            "state_retention_ms",
            "trace_retention_ms",
            "trace_stall_ms",
        ):
            if getattr(self, name) < 1:
                raise SettingsError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.inject_failure_rate <= 1.0:
            raise SettingsError("inject_failure_rate must be between 0 and 1")
        try:  # RetryPolicy holds the one definition of valid retry_* values
            self.retry_policy  # noqa: B018
        except ValueError as exc:
            raise SettingsError(str(exc)) from None
        if self.producer_linger_ms < 0:
            raise SettingsError("producer_linger_ms must be >= 0")
        if self.replication_factor < 0:
            raise SettingsError("replication_factor must be >= 0 (0: automatic)")
        self._check_local_kafka_ports()
        self._check_deadlines_cover_retries()
        self._check_group_timing()

    def _check_deadlines_cover_retries(self) -> None:
        """A saga deadline shorter than a command's retry budget gives up on commands
        that would still succeed (seen: good orders compensated under transient faults)."""
        budget = self.retry_policy.budget_ms()
        if self.saga_step_timeout_ms <= budget:
            raise SettingsError(
                f"saga_step_timeout_ms ({self.saga_step_timeout_ms}) must exceed the retry "
                f"budget of retry_base_ms/retry_factor/retry_jitter/retry_cap_ms/"
                f"retry_max_attempts ({budget} ms, every retry delay at its longest)"
            )
        horizon = self.saga_compensation_timeout_ms * self.saga_max_compensation_attempts
        if horizon <= budget:
            raise SettingsError(
                f"saga_compensation_timeout_ms x saga_max_compensation_attempts ({horizon}) "
                f"must exceed the retry budget ({budget} ms): a compensation would be given "
                "up while a retry of it is still waiting"
            )

    def _check_group_timing(self) -> None:
        """Kafka expects a few heartbeats per session (one late heartbeat must not evict
        a live worker); faust refuses a session timeout above its request timeout."""
        if self.consumer_session_timeout_ms < 0:
            raise SettingsError("consumer_session_timeout_ms must be >= 0 (0: automatic)")
        if self.uses_local_kafka and 0 < self.consumer_session_timeout_ms < EMBEDDED_MIN_SESSION_MS:
            raise SettingsError(
                f"consumer_session_timeout_ms ({self.consumer_session_timeout_ms}) is below "
                f"the embedded Kafka's group.min.session.timeout.ms ({EMBEDDED_MIN_SESSION_MS}):"
                " it would refuse the workers' join"
            )
        session = self.session_timeout_ms
        if self.consumer_heartbeat_interval_ms * 3 > session:
            raise SettingsError(
                f"consumer_heartbeat_interval_ms ({self.consumer_heartbeat_interval_ms}) "
                f"must be at most a third of consumer_session_timeout_ms ({session})"
            )
        if session > FAUST_REQUEST_TIMEOUT_MS:
            raise SettingsError(
                f"consumer_session_timeout_ms ({session}) must not "
                f"exceed faust's broker request timeout ({FAUST_REQUEST_TIMEOUT_MS} ms)"
            )

    @property
    def group_instance_id(self) -> str | None:
        """The static group member id of this worker (consumer_static_membership), else
        None: unique per worker because web_host:web_port is."""
        if not self.consumer_static_membership:
            return None
        return f"{self.service_app_id}-{self.web_host}-{self.web_port}"

    def _check_local_kafka_ports(self) -> None:
        ports = [p for k in range(1, self.local_kafka_nodes + 1) for p in self.local_kafka_ports(k)]
        if len(set(ports)) != len(ports):
            raise SettingsError(
                f"local_kafka_port ({self.local_kafka_port}) and local_kafka_controller_port "
                f"({self.local_kafka_controller_port}) give {self.local_kafka_nodes} nodes "
                f"overlapping ports {ports}: node k uses both + {LOCAL_KAFKA_PORT_STEP}(k-1), "
                "so let them differ by an odd number (e.g. 19092 and 19093)"
            )

    def local_kafka_ports(self, node: int) -> tuple[int, int]:
        """(client port, controller port) of node ``node`` (1-based) of the embedded Kafka:
        the configured ports shifted by LOCAL_KAFKA_PORT_STEP per node (node 1: as set)."""
        shift = LOCAL_KAFKA_PORT_STEP * (node - 1)
        return self.local_kafka_port + shift, self.local_kafka_controller_port + shift

    @property
    def session_timeout_ms(self) -> int:
        """The consumer session timeout workers use: the setting, or automatic when it is
        0 (3000 on the one-node embedded Kafka, which allows it; otherwise 6000, a stock
        Kafka's minimum — the 3-node cluster has not been run with workers at 3 s)."""
        if self.consumer_session_timeout_ms:
            return self.consumer_session_timeout_ms
        if self.uses_local_kafka and self.local_kafka_nodes == 1:
            return EMBEDDED_SESSION_TIMEOUT_MS
        return STOCK_SESSION_TIMEOUT_MS

    @property
    def topic_replication_factor(self) -> int:
        """The replication factor topics get: the setting, or automatic when it is 0
        (every node of the embedded Kafka up to 3; 1 on external servers)."""
        if self.replication_factor:
            return self.replication_factor
        return min(self.local_kafka_nodes, 3) if self.uses_local_kafka else 1

    @property
    def retry_policy(self) -> RetryPolicy:
        """The retry topics' backoff, from the retry_* settings."""
        return RetryPolicy(
            base_ms=self.retry_base_ms,
            factor=self.retry_factor,
            cap_ms=self.retry_cap_ms,
            jitter=self.retry_jitter,
            max_attempts=self.retry_max_attempts,
        )

    @property
    def uses_local_kafka(self) -> bool:
        """True when no external bootstrap servers are configured (the default)."""
        return not self.bootstrap_servers.strip()

    @property
    def bootstrap(self) -> str:
        """The bootstrap servers clients connect to: external ones or the local broker."""
        if self.uses_local_kafka:
            return ",".join(
                f"{self.local_kafka_host}:{self.local_kafka_ports(k)[0]}"
                for k in range(1, self.local_kafka_nodes + 1)
            )
        return self.bootstrap_servers.strip()

    @property
    def service_app_id(self) -> str:
        """The Faust app id (consumer group, changelog prefix) of this process's service."""
        return self.app_id if self.service == "orders" else f"{self.app_id}-{self.service}"

    @property
    def worker_data_dir(self) -> Path:
        """This worker's own table directory: ports are unique per host, so dirs are too."""
        return self.data_dir / f"{self.service_app_id}-{self.web_port}"

    def service_url(self, service: str) -> str:
        """Where the first worker of a service listens when started from the Procfile
        with base port ``web_port`` (honcho: base + 100 * process type index)."""
        port = self.web_port + SERVICE_PORT_STEP * SERVICES.index(service)
        return f"http://{self.web_host}:{port}"

    def topic(self, name: str) -> str:
        """The full name of a contract topic, with the configured prefix."""
        return f"{self.topic_prefix}{name}"

    def replace(self, **changes: Any) -> Settings:
        """A copy with some fields changed (validated like any other)."""
        return dataclasses.replace(self, **changes)


def _check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise SettingsError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")


def env_var(field_name: str) -> str:
    """The environment variable that overrides a setting."""
    return ENV_PREFIX + field_name.upper()


def _flatten(doc: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in doc.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{name}_"))
        else:
            flat[name] = value
    return flat


def _coerce(name: str, raw: Any, kind: Any, source: str) -> Any:
    try:
        if kind is float or kind == "float":
            if isinstance(raw, bool):
                raise ValueError("a boolean is not a number")
            return float(raw)
        if kind is int or kind == "int":
            if isinstance(raw, bool):
                raise ValueError("a boolean is not a number")
            return int(raw)
        if kind is bool or kind == "bool":
            return _boolean(raw)
        if kind is Path or kind == "Path":
            return Path(str(raw))
        return str(raw)
    except ValueError as exc:
        raise SettingsError(f"{source}: {name} must be {kind}: {exc}") from None


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def _boolean(raw: Any) -> bool:
    """TOML true/false, or an env var's 1/0, true/false, yes/no, on/off."""
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in _TRUE | _FALSE:
        return text in _TRUE
    raise ValueError(f"expected true or false, got {raw!r}")


def load_settings(
    config_file: Path | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Build the settings from the TOML file (if it exists) and the environment."""
    env = os.environ if environ is None else environ
    path = config_file or Path(env.get(CONFIG_ENV, "") or DEFAULT_CONFIG)
    known = {f.name: f.type for f in fields(Settings)}
    values: dict[str, Any] = {}
    if path.exists():
        try:
            doc = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"{path}: not valid TOML: {exc}") from None
        for name, raw in _flatten(doc).items():
            if name not in known:
                raise SettingsError(f"{path}: unknown setting {name!r}")
            values[name] = _coerce(name, raw, known[name], str(path))
    elif config_file is not None or CONFIG_ENV in env:
        raise SettingsError(f"config file {path} does not exist")
    for name, kind in known.items():
        var = env_var(name)
        if var in env:
            values[name] = _coerce(name, env[var], kind, var)
    settings = Settings(**values)
    return settings.replace(
        local_kafka_cache_dir=settings.local_kafka_cache_dir.expanduser(),
    )


def describe_settings() -> list[tuple[str, str, str, str]]:
    """(field, env var, default, doc) for every setting: the README table comes from this."""
    return [
        (f.name, env_var(f.name), str(f.default), f.metadata.get("doc", ""))
        for f in fields(Settings)
    ]
