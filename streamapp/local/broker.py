"""The embedded local broker: one KRaft broker+controller JVM on loopback.

The jars come from Maven Central through ``pom.xml`` beside this file and are cached
outside the working tree; the broker's config, data, pid file and logs live in
``local_kafka_state_dir``. Nothing here runs when external bootstrap servers are set.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from streamapp.local.processes import stop_group
from streamapp.settings import Settings

POM = Path(__file__).with_name("pom.xml")
MIN_JAVA = 17
READY_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 30.0


class BrokerError(RuntimeError):
    """The local broker cannot be fetched, started or stopped; the message says why."""


class ToolMissing(BrokerError):
    """A program the local broker needs (java, mvn) is not installed."""


@dataclass(frozen=True)
class BrokerStatus:
    """What is true about the local broker right now."""

    state: str  # running | stopped | unresponsive
    pid: int | None
    bootstrap: str
    version: str
    detail: str = ""

    @property
    def running(self) -> bool:
        return self.state == "running"

    def describe(self) -> str:
        pid = f" pid={self.pid}" if self.pid else ""
        extra = f" ({self.detail})" if self.detail else ""
        return f"kafka {self.version} {self.state}{pid} at {self.bootstrap}{extra}"


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock held for the block (released if the process dies)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def find_java() -> str:
    """Path of a Java >= 17 runtime, from JAVA_HOME or PATH."""
    java_home = os.environ.get("JAVA_HOME")
    candidate = str(Path(java_home) / "bin" / "java") if java_home else None
    if not candidate or not os.access(candidate, os.X_OK):
        candidate = shutil.which("java")
    if not candidate:
        raise ToolMissing(
            f"java not found: the local Kafka broker needs a JDK {MIN_JAVA}+ "
            "(Debian/Ubuntu: apt-get install openjdk-17-jdk-headless), "
            "or set JAVA_HOME, or set STREAMAPP_BOOTSTRAP_SERVERS to use an external Kafka"
        )
    out = subprocess.run([candidate, "-version"], capture_output=True, text=True, check=False)
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    major = int(match.group(1)) if match else 0
    if major == 1 and match and match.group(2):  # "1.8" style
        major = int(match.group(2))
    if major < MIN_JAVA:
        raise ToolMissing(
            f"{candidate} is Java {major or '?'}; Kafka 4 needs Java {MIN_JAVA}+ "
            "(Debian/Ubuntu: apt-get install openjdk-17-jdk-headless, then set JAVA_HOME)"
        )
    return candidate


def find_maven() -> str:
    mvn = shutil.which("mvn")
    if not mvn:
        raise ToolMissing(
            "mvn not found: fetching Kafka from Maven Central needs Apache Maven "
            "(Debian/Ubuntu: apt-get install maven)"
        )
    return mvn


def new_cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes, base64url without padding (22 chars).

    Never one that starts with "-" (1 in 64 would): kafka-storage's argument parser
    takes it for an option, as Kafka's own Uuid.randomUuid() avoids too.
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _pid_alive(pid: int) -> bool:
    """True if pid runs and is not a zombie (a reaped-later child must count as dead)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


class LocalBroker:
    """Lifecycle of the embedded broker: fetch, format, start, wait, stop, report."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.version = settings.local_kafka_version
        self.host = settings.local_kafka_host
        self.port = settings.local_kafka_port
        self.controller_port = settings.local_kafka_controller_port
        self.state_dir = settings.local_kafka_state_dir.resolve()
        self.cache_dir = settings.local_kafka_cache_dir.expanduser().resolve()

    # -- paths -----------------------------------------------------------------------
    @property
    def libs_dir(self) -> Path:
        return self.cache_dir / self.version / "libs"

    @property
    def data_dir(self) -> Path:
        return self.state_dir / "data"

    @property
    def config_file(self) -> Path:
        return self.state_dir / "server.properties"

    @property
    def log4j_file(self) -> Path:
        return self.state_dir / "log4j2.properties"

    @property
    def log_file(self) -> Path:
        return self.state_dir / "logs" / "server.log"

    @property
    def log_files(self) -> list[Path]:
        return [self.log_file]

    @property
    def stdout_file(self) -> Path:
        return self.state_dir / "logs" / "stdout.log"

    @property
    def cluster_id_file(self) -> Path:
        return self.state_dir / "cluster.id"

    @property
    def pid_file(self) -> Path:
        return self.state_dir / "broker.pid"

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    # -- fetching --------------------------------------------------------------------
    def ensure_jars(self) -> Path:
        """Resolve the Kafka jars once into the cache; later calls only check the marker."""
        marker = self.libs_dir / ".complete"
        if marker.exists():
            return self.libs_dir
        # The cache is shared by every state dir (tests run several brokers): one fetch.
        with file_lock(self.cache_dir / ".fetch.lock"):
            if not marker.exists():
                self._fetch_jars()
        return self.libs_dir

    def _fetch_jars(self) -> None:
        mvn = find_maven()
        staging = self.libs_dir.with_name(f"libs.tmp-{os.getpid()}")
        shutil.rmtree(staging, ignore_errors=True)
        cmd = [
            mvn,
            "-q",
            "-B",
            "-f",
            str(POM),
            f"-Dkafka.version={self.version}",
            "dependency:copy-dependencies",
            f"-DoutputDirectory={staging}",
            "-DincludeScope=runtime",
        ]
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0 or not any(staging.glob(f"kafka_2.13-{self.version}.jar")):
            shutil.rmtree(staging, ignore_errors=True)
            tail = "\n".join((result.stdout + result.stderr).splitlines()[-15:])
            raise BrokerError(f"could not fetch Apache Kafka {self.version} with Maven:\n{tail}")
        (staging / ".complete").write_text(self.version)
        shutil.rmtree(self.libs_dir, ignore_errors=True)
        staging.rename(self.libs_dir)

    # -- configuration ----------------------------------------------------------------
    def properties(self) -> dict[str, str]:
        """The broker config: single node KRaft, small footprint, test-friendly timings."""
        s = self.settings
        return {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{self.host}:{self.controller_port}",
            "listeners": f"PLAINTEXT://{self.host}:{self.port},"
            f"CONTROLLER://{self.host}:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{self.host}:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.data_dir),
            "num.partitions": str(s.partitions),
            "default.replication.factor": "1",
            "auto.create.topics.enable": "false",  # streamapp creates every topic itself
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "10",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "8",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            # Workers may ask for a session timeout down to 1 s (Kafka's floor: 6 s), so
            # that a dead worker's partitions move within seconds.
            "group.min.session.timeout.ms": "1000",
            # The cleaner's 128 MiB default dedupe buffer can OOM a small heap at start-up.
            "log.cleaner.dedupe.buffer.size": str(16 * 1024 * 1024),
            "log.cleaner.threads": "1",
            "num.network.threads": "2",
            "num.io.threads": "4",
            "num.recovery.threads.per.data.dir": "1",
        }

    def server_properties(self) -> str:
        return "".join(f"{k}={v}\n" for k, v in self.properties().items())

    def log4j_properties(self) -> str:
        return (
            "status = warn\n"
            "appender.file.type = RollingFile\n"
            "appender.file.name = FILE\n"
            f"appender.file.fileName = {self.log_file}\n"
            f"appender.file.filePattern = {self.log_file}.%i\n"
            "appender.file.layout.type = PatternLayout\n"
            "appender.file.layout.pattern = [%d] %p %m (%c)%n\n"
            "appender.file.policies.type = Policies\n"
            "appender.file.policies.size.type = SizeBasedTriggeringPolicy\n"
            "appender.file.policies.size.size = 20MB\n"
            "appender.file.strategy.type = DefaultRolloverStrategy\n"
            "appender.file.strategy.max = 3\n"
            "rootLogger.level = INFO\n"
            "rootLogger.appenderRef.file.ref = FILE\n"
            "logger.kafka.name = kafka\nlogger.kafka.level = INFO\n"
            "logger.state.name = state.change.logger\nlogger.state.level = WARN\n"
        )

    def _write_config(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(self.server_properties())
        self.log4j_file.write_text(self.log4j_properties())

    def _classpath(self) -> str:
        return str(self.libs_dir / "*")

    def _format_storage(self, java: str) -> None:
        """Format KRaft storage once; a formatted data dir keeps its cluster id."""
        if (self.data_dir / "meta.properties").exists():
            return
        cluster_id_file = self.cluster_id_file
        if not cluster_id_file.exists():
            cluster_id_file.write_text(new_cluster_id())
        cmd = [
            java,
            "-Xmx256m",
            f"-Dlog4j2.configurationFile={self.log4j_file}",
            "-cp",
            self._classpath(),
            "kafka.tools.StorageTool",
            "format",
            "-t",
            cluster_id_file.read_text().strip(),
            "-c",
            str(self.config_file),
        ]
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise BrokerError(f"formatting KRaft storage failed:\n{result.stdout}{result.stderr}")

    # -- lifecycle -------------------------------------------------------------------
    def _lock(self) -> contextlib.AbstractContextManager[None]:
        """Serialise up/down so that two concurrent `up` calls still give one broker."""
        return file_lock(self.state_dir / ".lock")

    def _read_pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def _our_jvm(self, pid: int) -> bool:
        """The pid is alive and is the JVM started with this state dir's config."""
        if pid <= 1 or not _pid_alive(pid):
            return False
        cmdline = _cmdline(pid)  # unreadable or empty: not provably ours, so not ours
        return "kafka.Kafka" in cmdline and str(self.config_file) in cmdline

    def status(self) -> BrokerStatus:
        pid = self._read_pid()
        if pid is None or not self._our_jvm(pid):
            detail = "stale pid file" if pid is not None else ""
            if port_open(self.host, self.port):
                detail = f"port {self.port} is taken by another process"
            return BrokerStatus("stopped", None, self.bootstrap, self.version, detail)
        if port_open(self.host, self.port):
            return BrokerStatus("running", pid, self.bootstrap, self.version)
        return BrokerStatus(
            "unresponsive", pid, self.bootstrap, self.version, "JVM runs, port closed"
        )

    def up(self, timeout: float = READY_TIMEOUT_S) -> BrokerStatus:
        """Start the broker unless it already runs; return once it serves metadata."""
        java = find_java()
        with self._lock():
            current = self.status()
            if current.pid is not None:
                self._wait_ready(current.pid, timeout)
                return self.status()
            pid = self._start(java)
            try:
                self._wait_ready(pid, timeout)
            except BrokerError:
                self._stop_pid(pid, STOP_TIMEOUT_S)
                self.pid_file.unlink(missing_ok=True)
                raise
            return self.status()

    def _start(self, java: str) -> int:
        """Write the config, format once and spawn the JVM; its pid, not waiting for it.
        The caller holds the lock (a cluster node cannot get ready alone: no quorum)."""
        if port_open(self.host, self.port) or port_open(self.host, self.controller_port):
            raise BrokerError(
                f"port {self.port} or {self.controller_port} on {self.host} is in use by "
                "another process: stop it or set STREAMAPP_LOCAL_KAFKA_PORT / "
                "STREAMAPP_LOCAL_KAFKA_CONTROLLER_PORT"
            )
        self.ensure_jars()
        self._write_config()
        self._format_storage(java)
        cmd = [
            java,
            f"-Xmx{self.settings.local_kafka_heap}",
            f"-Xms{min_heap(self.settings.local_kafka_heap)}",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.log4j_file}",
            f"-Dkafka.logs.dir={self.log_file.parent}",
            "-cp",
            self._classpath(),
            "kafka.Kafka",
            str(self.config_file),
        ]
        with open(self.stdout_file, "ab") as out:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=self.state_dir,
            )
        self.pid_file.write_text(str(proc.pid))
        return proc.pid

    def _wait_ready(self, pid: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not _pid_alive(pid):
                raise BrokerError(
                    f"the Kafka JVM exited during start-up; last log lines:\n{self.tail(20)}"
                )
            if port_open(self.host, self.port) and _serves_metadata(self.bootstrap):
                return
            time.sleep(0.25)
        raise BrokerError(f"Kafka did not become ready within {timeout:.0f} s; see {self.log_file}")

    def down(self, timeout: float = STOP_TIMEOUT_S) -> bool:
        """Stop the broker (SIGTERM, then SIGKILL at the deadline). True if one was running."""
        with self._lock():
            pid = self._read_pid()
            was_running = pid is not None and self._our_jvm(pid)
            if pid is not None and was_running:
                self._stop_pid(pid, timeout)
            self.pid_file.unlink(missing_ok=True)
            return was_running

    @staticmethod
    def _stop_pid(pid: int, timeout: float) -> None:
        """Stop the JVM's process group (it leads one: started with a new session)."""
        stop_group(pid, signal.SIGTERM, max(timeout - 3.0, 1.0), lambda: _pid_alive(pid))

    def tail(self, lines: int = 50) -> str:
        """The last lines of the broker's log (its stdout if the log does not exist yet)."""
        for path in (self.log_file, self.stdout_file):
            if path.exists():
                return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        return ""


def min_heap(max_heap: str) -> str:
    """Start the JVM at half its max heap (at least 64m): quicker start, modest footprint."""
    match = re.fullmatch(r"(\d+)([mMgG])", max_heap.strip())
    if not match:
        raise BrokerError(f"local_kafka_heap must look like 512m or 1g, got {max_heap!r}")
    mebibytes = int(match.group(1)) * (1024 if match.group(2) in "gG" else 1)
    return f"{max(mebibytes // 2, 64)}m"


def _serves_metadata(bootstrap: str) -> bool:
    """True once the broker answers a Metadata request (accepting TCP is not enough)."""
    import asyncio

    from aiokafka.admin import AIOKafkaAdminClient

    async def probe() -> bool:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
        try:
            await admin.start()
            await admin.describe_cluster()
            return True
        except Exception:
            return False
        finally:
            with contextlib.suppress(Exception):
                await admin.close()

    return asyncio.run(probe())
