"""A real Apache Kafka cluster (KRaft, combined broker+controller nodes) run from its jars.

There is no Docker engine on every developer machine, so the project fetches
`org.apache.kafka:kafka_2.13` and its runtime dependencies from Maven Central once
(`mvn dependency:copy-dependencies` on a small generated pom), caches them in the user
cache dir, formats a KRaft log dir and runs `kafka.Kafka` detached, with its pid, config,
data and logs in one data dir. Data survives `down`/`up`.

`LocalBroker` is one node; `LocalCluster` is one node in the data dir itself (the
default, as before clusters existed) or three and more in `node-<id>` sub-dirs, on
consecutive port pairs, each a voter of the controller quorum, so that any one of them
can die (kill -9 included) while the others keep serving.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from platformdirs import user_cache_dir, user_data_dir

from connectors.kafka.admin import Replication, list_topics, reachable

DEFAULT_KAFKA_VERSION = "4.1.1"
DEFAULT_PORT = 9092
DEFAULT_HEAP = "-Xms256m -Xmx512m"
MIN_JAVA = 17
# Seconds the last node of a stopping cluster gets to stop by itself (see `down`).
CLUSTER_STOP_GRACE = 10.0
# Kafka 4 logs through log4j2; this binds the slf4j 1.x API its dependencies use to it.
LOG4J_SLF4J = "org.apache.logging.log4j:log4j-slf4j-impl:2.24.3"


class BrokerError(Exception):
    """The local broker cannot be fetched, started or stopped; the text says what to do."""


def default_cache_dir() -> Path:
    return Path(user_cache_dir("clientify-odoo"))


def default_data_dir() -> Path:
    return Path(user_data_dir("clientify-odoo")) / "kafka"


# ---------------------------------------------------------------- prerequisites


def _alternatives() -> str:
    return (
        "Or run the stack with `docker compose up` instead, or set "
        "KAFKA_BOOTSTRAP_SERVERS to an existing Kafka cluster."
    )


def check_java() -> str:
    """Path of a Java >= 17 runtime, or a `BrokerError` that says how to get one."""
    java = shutil.which("java", path=_java_path())
    if java is None:
        raise BrokerError(
            f"Java {MIN_JAVA}+ is needed to run the local Kafka broker and was not found. "
            "Install it (Debian/Ubuntu: `sudo apt-get install openjdk-17-jre-headless`; "
            "macOS: `brew install openjdk@17`) or set JAVA_HOME. " + _alternatives()
        )
    out = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if match:
        major = int(match.group(1))
        if major == 1 and match.group(2):  # "1.8" style
            major = int(match.group(2))
        if major < MIN_JAVA:
            raise BrokerError(
                f"Kafka 4 needs Java {MIN_JAVA}+, but {java} is Java {major}. Install Java "
                f"{MIN_JAVA} or newer and put it first on PATH or in JAVA_HOME. " + _alternatives()
            )
    return java


def _java_path() -> str | None:
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        return str(Path(java_home) / "bin") + os.pathsep + os.environ.get("PATH", "")
    return None


def check_maven() -> str:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BrokerError(
            "Maven (`mvn`) is needed once, to fetch the Kafka broker jars from Maven "
            "Central, and was not found. Install it (Debian/Ubuntu: `sudo apt-get install "
            "maven`; macOS: `brew install maven`). " + _alternatives()
        )
    return mvn


# ---------------------------------------------------------------- the jars


@dataclass(frozen=True)
class KafkaJars:
    """The broker's jars for one Kafka version, fetched once into the cache dir."""

    version: str = DEFAULT_KAFKA_VERSION
    cache_dir: Path = field(default_factory=default_cache_dir)

    @property
    def home(self) -> Path:
        return self.cache_dir / f"kafka-{self.version}"

    @property
    def lib(self) -> Path:
        return self.home / "libs"

    def ready(self) -> bool:
        return (self.home / ".complete").exists()

    def classpath(self) -> str:
        return str(self.lib / "*")

    def fetch(self, on_progress: Callable[[str], None] = lambda _line: None) -> float:
        """Fetch the jars unless cached; returns the seconds it took (0 when cached)."""
        if self.ready():
            return 0.0
        mvn = check_maven()
        started = time.monotonic()
        self.home.mkdir(parents=True, exist_ok=True)
        pom = self.home / "pom.xml"
        pom.write_text(_pom(self.version))
        staging = self.home / "libs.partial"
        shutil.rmtree(staging, ignore_errors=True)
        command = [
            mvn, "-B", "-f", str(pom), "dependency:copy-dependencies",
            f"-DoutputDirectory={staging}", "-DincludeScope=runtime",
        ]  # fmt: skip
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        tail: list[str] = []
        assert process.stdout is not None
        for line in process.stdout:
            line = line.rstrip()
            tail = [*tail[-30:], line]
            if "Downloaded from" in line or "Copying" in line:
                on_progress(line.rsplit("/", 1)[-1].split(" ")[0])
        if process.wait() != 0:
            raise BrokerError(
                f"fetching Kafka {self.version} from Maven Central failed (mvn exit "
                f"{process.returncode}). Last lines:\n" + "\n".join(tail[-12:]) + "\n"
                "Check the network or Maven's proxy settings (~/.m2/settings.xml). "
                + _alternatives()
            )
        shutil.rmtree(self.lib, ignore_errors=True)
        staging.rename(self.lib)
        (self.home / ".complete").write_text(self.version)
        return time.monotonic() - started


def _pom(version: str) -> str:
    group, artifact, log4j_version = LOG4J_SLF4J.split(":")
    return f"""<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.clientify-odoo</groupId>
  <artifactId>kafka-broker-jars</artifactId>
  <version>{version}</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId>
      <version>{version}</version>
    </dependency>
    <dependency>
      <groupId>{group}</groupId><artifactId>{artifact}</artifactId>
      <version>{log4j_version}</version>
    </dependency>
  </dependencies>
</project>
"""


# ---------------------------------------------------------------- the broker


@dataclass(frozen=True)
class Quorum:
    """The cluster a node belongs to: its size and the controller voters."""

    size: int = 1
    voters: str = ""  # "1@127.0.0.1:9093,..."; empty: the node alone
    cluster_id_file: Path | None = None  # shared by every node; default: the node's own


class LocalBroker:
    """One KRaft broker+controller on 127.0.0.1 with everything under `data_dir`."""

    def __init__(
        self,
        data_dir: Path | None = None,
        port: int = DEFAULT_PORT,
        jars: KafkaJars | None = None,
        controller_port: int | None = None,
        heap: str | None = None,
        node_id: int = 1,
        quorum: Quorum | None = None,
    ) -> None:
        self.data_dir = (data_dir or default_data_dir()).resolve()
        self.port = port
        self.controller_port = controller_port or port + 1
        self.jars = jars or KafkaJars()
        self.heap = heap or os.environ.get("KAFKA_HEAP_OPTS", DEFAULT_HEAP)
        self.node_id = node_id
        self.quorum = quorum or Quorum()

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def kraft_dir(self) -> Path:
        return self.data_dir / "kraft"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "broker.pid"

    @property
    def server_log(self) -> Path:
        return self.log_dir / "server.log"

    # -- lifecycle

    def up(self, timeout: float = 90.0, on_progress: Callable[[str], None] = print) -> float:
        """Start the broker unless it runs; returns seconds until it accepted clients.
        A node of a cluster accepts clients once a majority of its quorum runs."""
        java = check_java()
        if self.jars.fetch(on_progress=on_progress) == 0.0:
            on_progress(f"Kafka {self.jars.version} jars cached in {self.jars.lib}")
        if self.pid() is not None:
            return 0.0
        started = time.monotonic()
        self.wait_ready(self.start(java), started, timeout)
        return time.monotonic() - started

    def start(self, java: str) -> subprocess.Popen[bytes]:
        """Configure, format (the first time) and spawn the node; not waiting for it."""
        if _port_open(self.port) or _port_open(self.controller_port):
            raise BrokerError(
                f"port {self.port} or {self.controller_port} on 127.0.0.1 is taken by another "
                "process, so the local broker cannot start there. Stop that process, choose "
                "another port with --port, or set KAFKA_BOOTSTRAP_SERVERS to use the cluster "
                "that is already listening."
            )
        self._write_config()
        if not (self.kraft_dir / "meta.properties").exists():
            self._format(java)
        return self._spawn(java)

    def down(self, timeout: float = 60.0) -> bool:
        """Stop the broker cleanly (SIGTERM, then SIGKILL after `timeout`); False if idle."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.2)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
            while _alive(pid):
                time.sleep(0.1)
        self.pid_file.unlink(missing_ok=True)
        return True

    def terminate(self) -> None:
        """Ask the node to stop (SIGTERM) without waiting; `down` waits."""
        pid = self.pid()
        if pid is not None:
            os.kill(pid, signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL, for crash tests: no clean shutdown."""
        pid = self.pid()
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            while _alive(pid):
                time.sleep(0.05)
        self.pid_file.unlink(missing_ok=True)

    def pid(self) -> int | None:
        """The pid of this data dir's broker if it is alive (stale pid files ignored)."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        if not _alive(pid):
            return None
        cmdline = _cmdline(pid)
        if cmdline is not None and str(self.data_dir) not in cmdline:
            return None  # the pid was reused by an unrelated process
        return pid

    # -- internals

    def _write_config(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.kraft_dir.mkdir(parents=True, exist_ok=True)
        voters = self.quorum.voters or f"{self.node_id}@127.0.0.1:{self.controller_port}"
        replication = Replication.for_brokers(self.quorum.size)
        properties = _server_properties(
            self.node_id, self.port, self.controller_port, self.kraft_dir, voters, replication
        )
        (self.data_dir / "server.properties").write_text(properties)
        (self.data_dir / "log4j2.yaml").write_text(_log4j2(self.server_log))

    def _format(self, java: str) -> None:
        cluster_file = self.quorum.cluster_id_file or self.data_dir / "cluster.id"
        if not cluster_file.exists():
            cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
            cluster_file.write_text(cluster_id)
        result = subprocess.run(
            [
                *self._java_command(java), "kafka.tools.StorageTool", "format",
                # `=` form: a base64 cluster id may start with "-".
                f"--cluster-id={cluster_file.read_text().strip()}",
                f"--config={self.data_dir / 'server.properties'}", "--ignore-formatted",
            ],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise BrokerError(
                f"formatting the KRaft log dir {self.kraft_dir} failed:\n"
                + (result.stderr or result.stdout)[-2000:]
            )

    def _java_command(self, java: str) -> list[str]:
        return [
            java,
            *self.heap.split(),
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.yaml'}",
            f"-Dkafka.logs.dir={self.log_dir}",
            "-cp",
            self.jars.classpath(),
        ]

    def _spawn(self, java: str) -> subprocess.Popen[bytes]:
        out = (self.log_dir / "server.out").open("ab")
        process = subprocess.Popen(
            [*self._java_command(java), "kafka.Kafka", str(self.data_dir / "server.properties")],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C in the terminal must not kill the broker
            cwd=self.data_dir,
        )
        out.close()
        self.pid_file.write_text(str(process.pid))
        return process

    def wait_ready(self, process: subprocess.Popen[bytes], started: float, timeout: float) -> None:
        # Liveness comes from the child handle, not `pid()`: right after the fork the
        # child still shows our own command line, which `pid()` would take for a reused pid.
        deadline = started + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                self.pid_file.unlink(missing_ok=True)
                raise BrokerError(
                    "the Kafka broker exited during start-up. Last log lines:\n"
                    + _tail(self.log_dir / "server.out", 10)
                    + "\n"
                    + _errors(self.server_log)
                    + f"\nFull logs: {self.log_dir}"
                )
            if _port_open(self.port) and reachable(self.bootstrap, timeout=5):
                return
            time.sleep(0.3)
        self.down()  # never leave a half-started broker behind
        raise BrokerError(
            f"the Kafka broker did not accept clients within {timeout:.0f}s and was stopped. "
            f"See {self.server_log}."
        )


class LocalCluster:
    """`brokers` KRaft nodes on 127.0.0.1 under one data dir.

    One node lives in the data dir itself (the layout of every earlier release, so data
    survives an upgrade); a cluster of N keeps node `i` in `node-<i>` on client port
    `port + 2(i-1)` and the controller port after it, every node a voter, so a majority
    of controllers (2 of 3) outlives the loss of any one node. The size a data dir was
    made with is read back from it: `down` and `status` need no `--brokers`.
    """

    def __init__(
        self,
        data_dir: Path | None = None,
        brokers: int | None = None,
        port: int = DEFAULT_PORT,
        jars: KafkaJars | None = None,
        heap: str | None = None,
    ) -> None:
        self.data_dir = (data_dir or default_data_dir()).resolve()
        found = self.size_in(self.data_dir)
        size = brokers or found or 1
        if size < 1:
            raise BrokerError(f"--brokers must be 1 or more, not {size}")
        if found and found != size:
            raise BrokerError(
                f"{self.data_dir} holds a {found}-broker cluster, not {size}: Kafka cannot "
                f"change that in place. Run it as it is (leave out --brokers), or give "
                f"another --data-dir for a {size}-broker one (or stop it with "
                f"`clientify-odoo kafka down` and delete {self.data_dir}: its data is lost)."
            )
        self.size = size
        self.jars = jars or KafkaJars()
        if size == 1:
            self.nodes = [LocalBroker(self.data_dir, port, self.jars, heap=heap)]
            return
        ports = [port + 2 * index for index in range(size)]
        voters = ",".join(f"{i}@127.0.0.1:{p + 1}" for i, p in enumerate(ports, start=1))
        home = self.data_dir
        quorum = Quorum(size, voters, home / "cluster.id")
        self.nodes = [
            LocalBroker(home / f"node-{i}", p, self.jars, heap=heap, node_id=i, quorum=quorum)
            for i, p in enumerate(ports, start=1)
        ]

    @staticmethod
    def size_in(data_dir: Path) -> int:
        """How many nodes the cluster in `data_dir` was made with (0: none yet)."""
        if (data_dir / "server.properties").exists():
            return 1
        return len(list(data_dir.glob("node-*/server.properties")))

    @property
    def bootstrap(self) -> str:
        return ",".join(node.bootstrap for node in self.nodes)

    def node(self, node_id: int) -> LocalBroker:
        return self.nodes[node_id - 1]

    def up(self, timeout: float = 90.0, on_progress: Callable[[str], None] = print) -> float:
        """Start every node that is not running; returns seconds until all accepted
        clients. All are spawned before any is waited for: a node serves clients only
        once a majority of the quorum runs."""
        java = check_java()
        if self.jars.fetch(on_progress=on_progress) == 0.0:
            on_progress(f"Kafka {self.jars.version} jars cached in {self.jars.lib}")
        started = time.monotonic()
        spawned = [(node, node.start(java)) for node in self.nodes if node.pid() is None]
        try:
            for node, process in spawned:
                node.wait_ready(process, started, timeout)
        except BrokerError:
            self.down()  # never leave part of a cluster behind
            raise
        return time.monotonic() - started if spawned else 0.0

    def down(self, timeout: float = 60.0) -> bool:
        """Stop every node cleanly, all at once (SIGTERM), then SIGKILL what is left.

        The last node standing has no controller majority to commit its own clean stop
        and waits for one forever, so it gets `CLUSTER_STOP_GRACE` seconds after the
        others are gone. Nothing acknowledged is lost by that: every record is on two
        nodes' disks, and the killed node checks its logs at the next start."""
        running = [node for node in self.nodes if node.pid() is not None]
        if len(running) <= 1:
            return any([node.down(timeout) for node in running])
        for node in running:
            node.terminate()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            left = [node for node in running if node.pid() is not None]
            if len(left) <= 1:
                break
            time.sleep(0.2)
        for node in running:
            node.down(CLUSTER_STOP_GRACE)
        return True

    def pid(self) -> int | None:
        """A running node's pid; None when no node runs."""
        return next((pid for node in self.nodes if (pid := node.pid()) is not None), None)

    def status(self) -> ClusterStatus:
        pids = {node.node_id: node.pid() for node in self.nodes}
        topics: tuple[str, ...] = ()
        if any(pids.values()):
            topics = tuple(sorted(asyncio.run(list_topics(self.bootstrap))))
        return ClusterStatus(pids, self.bootstrap, self.data_dir, topics)

    def controller_leader(self) -> int | None:
        """The node id leading the controller quorum, from the newest quorum state a
        node wrote (clients cannot ask: KRaft hides its controllers from them)."""
        newest: tuple[int, int] | None = None
        for node in self.nodes:
            state = node.kraft_dir / "__cluster_metadata-0" / "quorum-state"
            with contextlib.suppress(OSError, ValueError):
                data = json.loads(state.read_text())
                leader, epoch = int(data.get("leaderId", -1)), int(data.get("leaderEpoch", -1))
                if leader > 0 and (newest is None or epoch > newest[1]):
                    newest = (leader, epoch)
        return newest[0] if newest else None

    def describe(self) -> str:
        """Where the data and logs are, for the terminal."""
        if self.size == 1:
            return f"  data: {self.nodes[0].kraft_dir}\n  logs: {self.nodes[0].log_dir}"
        return f"  data and logs: {self.data_dir}/node-<1..{self.size}>/(kraft|logs)"


@dataclass(frozen=True)
class ClusterStatus:
    pids: dict[int, int | None]  # node id -> pid, None when that node is down
    bootstrap: str
    data_dir: Path
    topics: tuple[str, ...] = ()

    @property
    def running(self) -> int:
        return sum(pid is not None for pid in self.pids.values())


def _server_properties(
    node_id: int,
    port: int,
    controller_port: int,
    kraft_dir: Path,
    voters: str,
    replication: Replication,
) -> str:
    return f"""# Written by clientify-odoo; edits are overwritten at the next `kafka up`.
process.roles=broker,controller
node.id={node_id}
controller.quorum.voters={voters}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs={kraft_dir}
num.partitions=3
# Internal topics (offsets, transactions) and any topic created without saying: as many
# copies as the cluster allows, as the product's own topics (connectors.kafka.admin).
default.replication.factor={replication.factor}
min.insync.replicas={replication.min_insync}
offsets.topic.replication.factor={replication.factor}
offsets.topic.num.partitions=10
transaction.state.log.replication.factor={replication.factor}
transaction.state.log.min.isr={replication.min_insync}
transaction.state.log.num.partitions=10
share.coordinator.state.topic.replication.factor={replication.factor}
share.coordinator.state.topic.min.isr={replication.min_insync}
# Every topic is declared by the product's registry; a typo must not create one.
auto.create.topics.enable=false
group.initial.rebalance.delay.ms=0
log.retention.check.interval.ms=300000
"""


def _log4j2(server_log: Path) -> str:
    return f"""Configuration:
  Appenders:
    RollingFile:
      name: FILE
      fileName: "{server_log}"
      filePattern: "{server_log}.%i"
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
      SizeBasedTriggeringPolicy:
        size: "20 MB"
      DefaultRolloverStrategy:
        max: 3
  Loggers:
    Root:
      level: INFO
      AppenderRef:
        - ref: FILE
    Logger:
      - name: kafka.request.logger
        level: WARN
"""


def free_port_pair(brokers: int = 1) -> int:
    """A port p with p .. p+2*brokers-1 free on 127.0.0.1: a client and a controller
    listener per broker (`LocalCluster`'s layout).

    Drawn below Linux's ephemeral range (32768+), where every outgoing connection of
    this machine takes its local port, so a port found free stays free until bound.
    """
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(20000, 32000)
        ports = set(range(port, port + 2 * brokers))
        if ports & _HANDED_OUT:
            continue
        if all(_bindable(candidate) for candidate in ports):
            _HANDED_OUT.update(ports)
            return port
    raise BrokerError(f"no {2 * brokers} consecutive free ports found on 127.0.0.1")


# Ports this process handed out: free when drawn, but a stack draws all of its ports
# before it starts anything, so only this set keeps two of them apart (a test's Odoo
# sandbox and a writer's metrics once drew the same port).
_HANDED_OUT: set[int] = set()


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@contextlib.contextmanager
def throwaway_broker(prefix: str = "kafka-") -> Iterator[str]:
    """KAFKA_BOOTSTRAP_SERVERS when set, else a local broker on free ports in a
    temporary dir, removed afterwards (benchmarks and one-off runs)."""
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        yield external
        return
    with tempfile.TemporaryDirectory(prefix=prefix) as data:
        broker = LocalBroker(data_dir=Path(data), port=free_port_pair())
        broker.up(on_progress=lambda _line: None)
        try:
            yield broker.bootstrap
        finally:
            broker.down()


def _port_open(port: int) -> bool:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child (our own, not yet reaped) counts as dead.
    with contextlib.suppress(ChildProcessError):
        waited, _status = os.waitpid(pid, os.WNOHANG)
        if waited == pid:
            return False
    stat = Path(f"/proc/{pid}/stat")
    if stat.exists():
        with contextlib.suppress(OSError, IndexError):
            return stat.read_text().split(")")[-1].split()[0] != "Z"
    return True


def _cmdline(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return None


def _errors(server_log: Path) -> str:
    """The ERROR lines and root causes of the broker's own log (where log4j writes)."""
    try:
        lines = server_log.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return ""
    wanted = [line for line in lines if " ERROR " in line or line.startswith("Caused by:")]
    return "\n".join(wanted[-8:])


def _tail(path: Path, lines: int) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log written)"
