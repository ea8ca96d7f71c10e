"""The ``streamapp`` command: local broker, topics, workers, the whole system, probes."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path

from streamapp.kafka.topics import describe_topics, ensure_topics
from streamapp.local.broker import BrokerError, LocalBroker
from streamapp.local.cluster import LocalCluster, local_kafka, other_cluster_running
from streamapp.settings import Settings, SettingsError, describe_settings, env_var, load_settings
from streamapp.topics import dlq_topic, is_dlq


def _broker(settings: Settings) -> LocalBroker | LocalCluster:
    if not settings.uses_local_kafka:
        raise BrokerError(
            f"bootstrap servers are set ({settings.bootstrap_servers}): the local broker is "
            "not used; unset STREAMAPP_BOOTSTRAP_SERVERS to manage it"
        )
    return local_kafka(settings)


def cmd_kafka(settings: Settings, args: argparse.Namespace) -> int:
    broker = _broker(settings)
    if args.action == "up":
        print(broker.up().describe())
    elif args.action == "down":
        started = time.monotonic()
        stopped = broker.down()
        took = time.monotonic() - started
        print(f"kafka stopped in {took:.1f} s" if stopped else "kafka was not running")
        _hint_cluster(settings)
    elif args.action == "status":
        status = broker.status()
        print(status.describe())
        _hint_cluster(settings)
        return 0 if status.running else 3
    elif args.action == "logs":
        if not args.follow:
            print(broker.tail(args.lines))
            return 0
        files = [str(path) for path in broker.log_files]
        os.execvp("tail", ["tail", "-n", str(args.lines), "-F", *files])
    return 0


def _hint_cluster(settings: Settings) -> None:
    if nodes := other_cluster_running(settings):
        print(f"note: a {nodes}-node cluster runs from this state dir: add --nodes {nodes}")


def cmd_topics(settings: Settings, args: argparse.Namespace) -> int:
    from streamapp.app import app

    specs = app.topic_specs()
    if args.action == "create":
        report = asyncio.run(ensure_topics(settings.bootstrap, specs))
        print(
            f"created {len(report.created)}, existing {len(report.existing)}, "
            f"partition mismatch {len(report.mismatched)}"
        )
        for name in report.created:
            print(f"  + {name}")
        for name in report.mismatched:
            print(f"  ! {name}: partition count differs from the settings")
        return 0
    wanted = {s.name: s for s in specs}
    infos = {i.name: i for i in asyncio.run(describe_topics(settings.bootstrap))}
    names = sorted(set(wanted) | (set(infos) if args.all else set()))
    print(f"{'topic':<48} {'parts':>5} {'rf':>3}  {'cleanup':<8} {'retention.ms':>13}  state")
    for name in names:
        info, spec = infos.get(name), wanted.get(name)
        if info is None:
            print(
                f"{name:<48} {spec.partitions if spec else '-':>5} {'-':>3}  "
                f"{'-':<8} {'-':>13}  missing"
            )
            continue
        state = (
            "ok"
            if spec is None or spec.partitions == info.partitions
            else (f"expected {spec.partitions} partitions")
        )
        if spec is None:
            state = "not streamapp's"
        print(
            f"{name:<48} {info.partitions:>5} {info.replication_factor:>3}  "
            f"{info.config.get('cleanup.policy', '?'):<8} "
            f"{info.config.get('retention.ms', '?'):>13}  {state}"
        )
    return 0


#: faust's --loglevel spells two of the levels its own way.
FAUST_LOG_LEVELS = {"warning": "warn", "critical": "crit"}


def faust_worker_argv(settings: Settings, extra: list[str]) -> list[str]:
    """The `faust worker` command line for these settings."""
    level = FAUST_LOG_LEVELS.get(settings.log_level, settings.log_level)
    return [sys.executable, "-m", "faust", "-A", "streamapp.app", "worker", "-l", level, *extra]


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    """Replace this process with a faust worker configured from the settings."""
    argv = faust_worker_argv(settings, args.faust_args)
    os.execvp(argv[0], argv)
    return 0  # not reached


def workers_argument(spec: str) -> dict[str, int]:
    from streamapp.local.runner import worker_counts

    try:
        return worker_counts(spec)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def cmd_run(settings: Settings, args: argparse.Namespace) -> int:
    from streamapp.local.runner import run_system

    procfile = Path(args.procfile).resolve()
    if not procfile.is_file():
        print(f"streamapp run: no Procfile at {procfile} (use --procfile)", file=sys.stderr)
        return 2
    return run_system(settings, procfile, args.workers)


def cmd_probe(settings: Settings, args: argparse.Namespace) -> int:
    """Send one probe and wait until a worker's view shows it: the whole path works."""
    from streamapp.tools.probe import probe

    return probe(settings, args.key, args.url, args.timeout)


def _dlq_topics(settings: Settings, names: list[str]) -> list[str]:
    """DLQ topic names for the given source topics (default: every one the app has)."""
    if names:
        return [dlq_topic(settings.topic(n)) for n in names]
    from streamapp.app import app

    return [s.name for s in app.topic_specs() if is_dlq(s.name)]


def cmd_dlq(settings: Settings, args: argparse.Namespace) -> int:
    """list | show | replay | purge the dead letters of the app's topics."""
    from streamapp.tools import dlq

    topics = _dlq_topics(settings, [args.topic] if args.topic else [])
    if args.action != "list" and len(topics) != 1:
        print("streamapp dlq: name the topic (e.g. orders.commands)", file=sys.stderr)
        return 2
    letters = {t: asyncio.run(dlq.read_dead_letters(settings.bootstrap, t)) for t in topics}
    chosen = {
        t: dlq.select(found, args.partition, args.offset or (), args.error_type)
        for t, found in letters.items()
    }
    if args.action == "list":
        for topic, found in chosen.items():
            print(f"{topic}: {len(found)} dead letter(s)")
            for letter in found:
                print(f"  {letter.summary()}")
        return 0
    [(topic, found)] = chosen.items()
    if args.action == "show":
        for letter in found:
            print(f"{topic}[{letter.partition}]@{letter.offset} key={letter.key!r}")
            for name, value in letter.headers:
                print(f"  {name}: {value.decode(errors='replace')}")
            print(f"  value: {(letter.value or b'').decode(errors='replace')}")
        return 0
    if args.action == "replay":
        if args.dry_run:
            for letter in found:
                target, *_ = dlq.replay_record(letter)
                print(f"would replay {topic}[{letter.partition}]@{letter.offset} -> {target}")
            print(f"{len(found)} dead letter(s) would be replayed")
            return 0
        from tqdm import tqdm

        with tqdm(total=len(found), unit="record", desc="replay", file=sys.stderr) as bar:
            sent = asyncio.run(dlq.replay(settings.bootstrap, found, bar.update))
        print(f"replayed {sent} dead letter(s) from {topic}")
        return 0
    # purge: Kafka deletes only prefixes of a partition, so purging a selection deletes
    # every dead letter before it too; refuse if that includes unselected ones.
    before: dict[int, int] = {}
    for letter in found:
        before[letter.partition] = max(before.get(letter.partition, 0), letter.offset + 1)
    collateral = [
        d for d in letters[topic] if d.offset < before.get(d.partition, 0) and d not in found
    ]
    if collateral and not args.include_earlier:
        print(
            f"streamapp dlq: purging would also delete {len(collateral)} earlier, unselected "
            "dead letter(s) (Kafka deletes partition prefixes); add --include-earlier",
            file=sys.stderr,
        )
        return 2
    if args.dry_run:
        print(f"would delete {topic} records before {before}")
        return 0
    low = asyncio.run(dlq.purge(settings.bootstrap, topic, before))
    print(f"purged {topic}: partitions now start at {low}")
    return 0


def cmd_verify(settings: Settings, args: argparse.Namespace) -> int:
    """Check the contract's invariants from the topics and views; exit 0 when they hold."""
    from streamapp.tools.verify import INVARIANTS, run

    report = run(
        settings,
        sorted(set(args.invariant or INVARIANTS)),
        inventory_url=args.inventory_url,
        payments_url=args.payments_url,
    )
    checked = ", ".join(f"{n} {what}" for what, n in report.checked.items())
    checked = f" ({checked})" if checked else ""
    if report.ok:
        print(f"verify: OK{checked}")
    else:
        print(f"verify: {len(report.violations)} violation(s){checked}")
    for violation in report.violations:
        print(f"  - {violation}")
    for note in report.notes:
        print(f"  note: {note}")
    return 0 if report.ok else 1


def cmd_repartition(settings: Settings, args: argparse.Namespace) -> int:
    """Copy a drained, stopped deployment onto new topics with a new partition count."""
    from streamapp.tools.repartition import RepartitionError, repartition

    try:
        report = asyncio.run(repartition(settings, args.to_prefix, args.to_app_id, args.partitions))
    except RepartitionError as exc:
        print(f"streamapp repartition: {exc}", file=sys.stderr)
        return 1
    for topic, count in report.copied.items():
        print(f"  {topic}: {count} record(s)")
    print(
        f"repartition: OK, {sum(report.copied.values())} record(s) in {len(report.copied)} "
        f"topics; offsets committed for {', '.join(report.committed_groups) or 'no group'}"
    )
    print(
        f"start the workers with STREAMAPP_APP_ID={args.to_app_id} "
        f"STREAMAPP_TOPIC_PREFIX={args.to_prefix} STREAMAPP_PARTITIONS={args.partitions}"
    )
    return 0


def cmd_loadgen(settings: Settings, args: argparse.Namespace) -> int:
    """Send a planned mix of orders at a fixed rate; report how their sagas ended."""
    from aiokafka.errors import KafkaError

    from streamapp.kafka.topics import TopicError
    from streamapp.tools.loadgen import LoadgenError, generate

    try:
        return asyncio.run(
            generate(
                settings,
                args.orders,
                args.rate,
                args.mix,
                args.seed,
                wait=not args.no_wait,
                wait_timeout=args.wait_timeout,
            )
        )
    except (LoadgenError, TopicError, KafkaError) as exc:
        print(f"streamapp loadgen: {exc}", file=sys.stderr)
        return 2


def cmd_schemas(settings: Settings, args: argparse.Namespace) -> int:
    """list | show SUBJECT | check FILE | register FILE against an orders worker."""
    from streamapp.tools import schemas

    base = (args.url or settings.service_url("orders")).rstrip("/")
    try:
        if args.action == "list":
            print("\n".join(schemas.list_subjects(base)))
        elif args.action == "show":
            found = schemas.show(base, args.target, args.version)
            print(json.dumps({**found, "schema": json.loads(found["schema"])}, indent=2))
        else:
            path = Path(args.target)
            subject = schemas.subject_of(path, args.subject)
            if args.action == "check":
                reasons = schemas.check(base, path, subject)
                print(f"{subject}: " + ("compatible" if not reasons else "incompatible"))
                for reason in reasons:
                    print(f"  {reason}")
                return 1 if reasons else 0
            print(f"{subject}: registered, id {schemas.register(base, path, subject)}")
    except schemas.RegistryError as exc:
        print(f"streamapp schemas {args.action}: {exc}", file=sys.stderr)
        return 1 if args.action == "check" else 2
    except (OSError, ValueError) as exc:  # no such file, not JSON
        print(f"streamapp schemas {args.action}: {exc}", file=sys.stderr)
        return 2
    return 0


#: Settings whose 0 means "automatic": the property with the value workers use.
AUTOMATIC = {
    "consumer_session_timeout_ms": "session_timeout_ms",
    "replication_factor": "topic_replication_factor",
}


def setting_shown(settings: Settings, name: str) -> str:
    """A setting's value as `streamapp settings` prints it (an automatic 0 with what it
    resolves to here)."""
    value = getattr(settings, name)
    if name in AUTOMATIC and value == 0:
        return f"0 (auto: {getattr(settings, AUTOMATIC[name])})"
    return str(value)


def cmd_settings(settings: Settings, args: argparse.Namespace) -> int:
    for name, var, _default, doc in describe_settings():
        print(f"{var:<38} = {setting_shown(settings, name):<28} # {doc}")
    return 0


NODES_HELP = (
    "nodes of the embedded Kafka (3: a KRaft cluster, replication factor 3); the same as "
    "STREAMAPP_LOCAL_KAFKA_NODES, which it sets for this command and the workers it starts"
)


def build_parser() -> argparse.ArgumentParser:
    from streamapp.tools.loadgen import DEFAULT_MIX

    parser = argparse.ArgumentParser(prog="streamapp", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    kafka = sub.add_parser("kafka", help="the embedded local Kafka broker")
    kafka.add_argument("action", choices=["up", "down", "status", "logs"])
    kafka.add_argument("-n", "--lines", type=int, default=50, help="log lines to show")
    kafka.add_argument("-f", "--follow", action="store_true", help="follow the log")
    kafka.add_argument("--nodes", type=int, help=NODES_HELP)
    kafka.set_defaults(func=cmd_kafka)

    topics = sub.add_parser("topics", help="list (default) or create the app's topics")
    topics.add_argument("action", nargs="?", choices=["list", "create"], default="list")
    topics.add_argument("--all", action="store_true", help="also list topics not streamapp's")
    topics.set_defaults(func=cmd_topics)

    worker = sub.add_parser("worker", help="run one faust worker (what the Procfile starts)")
    worker.add_argument(
        "faust_args", nargs=argparse.REMAINDER, help="extra arguments for `faust worker`"
    )
    worker.set_defaults(func=cmd_worker)

    run = sub.add_parser("run", help="broker + topics + workers; Ctrl-C stops all of it")
    run.add_argument(
        "--workers",
        type=workers_argument,
        default=os.environ.get("WORKERS", "1"),
        help="N orders workers (one of each participant), or service=N,... "
        "e.g. orders=3,inventory=2,payments=2 (default: $WORKERS or 1)",
    )
    run.add_argument("--procfile", default="Procfile")
    run.add_argument("--nodes", type=int, help=NODES_HELP)
    run.set_defaults(func=cmd_run)

    probe = sub.add_parser("probe", help="send a probe and wait until a worker shows it")
    probe.add_argument("--key", default="probe")
    probe.add_argument("--url", help="worker base URL (default: this host's web port)")
    probe.add_argument("--timeout", type=float, default=30.0)
    probe.set_defaults(func=cmd_probe)

    dead = sub.add_parser("dlq", help="list, show, replay or purge dead letters")
    dead.add_argument("action", choices=["list", "show", "replay", "purge"])
    dead.add_argument("topic", nargs="?", help="source topic, e.g. orders.commands")
    dead.add_argument("--partition", type=int, help="only this DLQ partition")
    dead.add_argument("--offset", type=int, action="append", help="only these DLQ offsets")
    dead.add_argument("--error-type", help="only dead letters with this error-type")
    dead.add_argument("--dry-run", action="store_true", help="say what would happen")
    dead.add_argument(
        "--include-earlier",
        action="store_true",
        help="purge: also delete earlier dead letters of the same partitions",
    )
    dead.set_defaults(func=cmd_dlq)

    verify = sub.add_parser("verify", help="check the contract's invariants; exit 0/1")
    verify.add_argument(
        "--invariant",
        type=int,
        action="append",
        choices=[1, 2, 3, 4],
        help="check only this invariant (repeatable; default: 1-4)",
    )
    verify.add_argument("--inventory-url", help="inventory service base URL (default: settings)")
    verify.add_argument("--payments-url", help="payments service base URL (default: settings)")
    verify.set_defaults(func=cmd_verify)

    moved = sub.add_parser(
        "repartition",
        help="copy a drained, stopped deployment onto new topics with N partitions",
    )
    moved.add_argument("--partitions", type=int, required=True, help="the new partition count")
    moved.add_argument("--to-app-id", required=True, help="the new deployment's app id")
    moved.add_argument("--to-prefix", required=True, help="the new deployment's topic prefix")
    moved.set_defaults(func=cmd_repartition)

    loadgen = sub.add_parser("loadgen", help="send a mix of orders; report their saga outcomes")
    loadgen.add_argument("--orders", type=int, required=True, help="how many orders")
    loadgen.add_argument("--rate", type=float, required=True, help="orders per second")
    loadgen.add_argument(
        "--mix",
        default=DEFAULT_MIX,
        help="fractions of failing kinds (stockout, credit, country, cancel); the rest is "
        "happy; '' for all happy (default: %(default)s)",
    )
    loadgen.add_argument("--seed", type=int, help="random seed of the plan (default: random)")
    loadgen.add_argument("--no-wait", action="store_true", help="send, do not await outcomes")
    loadgen.add_argument(
        "--wait-timeout",
        type=float,
        default=120.0,
        help="seconds to wait for terminal sagas (default: %(default)s)",
    )
    loadgen.set_defaults(func=cmd_loadgen)

    schemas_cmd = sub.add_parser(
        "schemas", help="the schema registry: list, show, check (exit 0/1), register"
    )
    schemas_cmd.add_argument("action", choices=["list", "show", "check", "register"])
    schemas_cmd.add_argument("target", nargs="?", help="a subject (show) or a schema file")
    schemas_cmd.add_argument("--subject", help="the subject of FILE (default: its title)")
    schemas_cmd.add_argument("--version", default="latest", help="show: a version number")
    schemas_cmd.add_argument("--url", help="an orders worker (default: the Procfile's first)")
    schemas_cmd.set_defaults(func=cmd_schemas)

    settings_cmd = sub.add_parser("settings", help="print the effective settings")
    settings_cmd.set_defaults(func=cmd_settings)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "nodes", None) is not None:
        # An env var, not a settings override: the app (imported later, its own settings)
        # and the workers `run` starts must see the same cluster.
        os.environ[env_var("local_kafka_nodes")] = str(args.nodes)
    try:
        settings = load_settings()
        return int(args.func(settings, args))
    except (SettingsError, BrokerError) as exc:
        print(f"streamapp: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. `streamapp settings | head`
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
