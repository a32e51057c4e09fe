#!/usr/bin/env python3
"""A single-node Apache Kafka broker in KRaft mode, from the official jars.

    python3 ops/kafka_local.py install            # resolve the jars with mvn (cached)
    python3 ops/kafka_local.py start [--port N]   # format once, start, wait until ready
    python3 ops/kafka_local.py status
    python3 ops/kafka_local.py stop

`start` prints the bootstrap address on stdout (everything else goes to stderr),
so a script can do `BOOTSTRAP=$(python3 ops/kafka_local.py start --port 0)`.

The broker's jars are resolved by Maven from `ops/kafka/pom.xml` (the Kafka
version is pinned there) into `.cache/kafka/libs`. Each broker lives in a data
folder (default `.cache/kafka/broker`) holding its config, pid file, log and
KRaft storage; storage is formatted only once, so stop/start keeps topics. The
port is chosen at the first start (`--port 0` picks a free one) and reused after.

Standard library only: this runs before the project's virtualenv exists.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
POM = REPO / "ops" / "kafka" / "pom.xml"
LOG_CONFIG = REPO / "ops" / "kafka" / "log4j2.properties"
CACHE = REPO / ".cache" / "kafka"
LIBS = CACHE / "libs"
DEFAULT_DATA = CACHE / "broker"
DEFAULT_PORT = 9092
READY_MARKER = "Kafka Server started"


class BrokerError(RuntimeError):
    """The broker could not be installed, started or stopped; the message says why."""


@dataclass(frozen=True)
class Broker:
    """One broker's data folder and the files inside it."""

    data: Path

    @property
    def config(self) -> Path:
        return self.data / "server.properties"

    @property
    def pid_file(self) -> Path:
        return self.data / "broker.pid"

    @property
    def log(self) -> Path:
        return self.data / "server.log"

    @property
    def console(self) -> Path:
        return self.data / "console.log"

    @property
    def storage(self) -> Path:
        return self.data / "kraft"

    def port(self) -> int | None:
        if not self.config.exists():
            return None
        match = re.search(r"^listeners=PLAINTEXT://127\.0\.0\.1:(\d+)", self.config.read_text(), re.M)
        return int(match.group(1)) if match else None

    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port()}"

    def pid(self) -> int | None:
        """The broker's pid when its process is alive, else None."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        return pid


def log(message: str) -> None:
    print(f"kafka-local: {message}", file=sys.stderr, flush=True)


def require_tools() -> None:
    """Fail with a clear message unless Java 17+ and Maven are on PATH."""
    if shutil.which("java") is None:
        raise BrokerError(
            "java was not found on PATH: install a Java 17 (or newer) runtime, "
            "e.g. apt-get install openjdk-17-jre-headless"
        )
    version = subprocess.run(["java", "-version"], capture_output=True, text=True, check=False).stderr
    match = re.search(r'version "(\d+)', version)
    if match is None or int(match.group(1)) < 17:
        raise BrokerError(f"Kafka 4 needs Java 17 or newer; `java -version` says: {version.strip()}")
    if shutil.which("mvn") is None and not any(LIBS.glob("kafka_*.jar")):
        raise BrokerError(
            "mvn was not found on PATH: install Apache Maven (apt-get install maven) to resolve the Kafka jars"
        )


def install() -> None:
    """Resolve the pinned Kafka broker jars with Maven into the cache (once)."""
    require_tools()
    stamp = LIBS / ".pom-sha"
    pom_digest = str(hash_file(POM))
    if stamp.exists() and stamp.read_text() == pom_digest:
        return
    log(f"resolving the Kafka jars with mvn into {LIBS.relative_to(REPO)}")
    if LIBS.exists():
        shutil.rmtree(LIBS)
    result = subprocess.run(
        [
            "mvn",
            "-q",
            "-B",
            "-f",
            str(POM),
            "dependency:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={LIBS}",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0 or not any(LIBS.glob("kafka_*.jar")):
        raise BrokerError(f"mvn could not resolve the Kafka jars:\n{result.stdout}{result.stderr}")
    stamp.write_text(pom_digest)


def hash_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def free_port() -> int:
    """A free loopback port below the kernel's ephemeral range, so that no client connection can be
    handed it as its local port while the broker is stopped (the broker reuses it when restarted)."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    candidates = list(range(max(1024, low - 12000), low))
    random.shuffle(candidates)
    for port in candidates:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise BrokerError("no free loopback port below the ephemeral range")


# The broker's settings apart from its addresses and folders; docker-compose.yml sets the same
# (tests/e2e/test_compose.py compares them).
BROKER_SETTINGS = {
    "num.partitions": "1",
    "auto.create.topics.enable": "false",
    "offsets.topic.replication.factor": "1",
    "offsets.topic.num.partitions": "4",
    "transaction.state.log.replication.factor": "1",
    "transaction.state.log.min.isr": "1",
    "transaction.state.log.num.partitions": "4",
    "share.coordinator.state.topic.replication.factor": "1",
    "share.coordinator.state.topic.min.isr": "1",
    "group.initial.rebalance.delay.ms": "0",
    # Large images travel as single records; topics raise their own limit.
    "message.max.bytes": "33554432",
    "replica.fetch.max.bytes": "33554432",
}


def write_config(broker: Broker, port: int) -> None:
    controller_port = free_port()
    broker.data.mkdir(parents=True, exist_ok=True)
    broker.config.write_text(
        "\n".join(
            [
                "# Written by ops/kafka_local.py: a single-node KRaft broker on loopback.",
                "process.roles=broker,controller",
                "node.id=1",
                f"controller.quorum.voters=1@127.0.0.1:{controller_port}",
                f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
                f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}",
                "controller.listener.names=CONTROLLER",
                "inter.broker.listener.name=PLAINTEXT",
                "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
                f"log.dirs={broker.storage}",
                *(f"{key}={value}" for key, value in BROKER_SETTINGS.items()),
                "",
            ]
        )
    )


def format_storage(broker: Broker) -> None:
    if (broker.storage / "meta.properties").exists():
        return
    # `=` joins the id to its option: an id may start with "-", which would read as an option of its own.
    cluster = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    result = subprocess.run(
        [
            *java_command(broker),
            *("kafka.tools.StorageTool", "format", f"--cluster-id={cluster}", "-c", str(broker.config)),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise BrokerError(f"formatting KRaft storage failed:\n{result.stdout}{result.stderr}")


# The JVM of a broker that shares a small machine with the workers it serves (tests, benchmarks, the demo):
# with the JVM's defaults, C2 compilation bursts and G1's concurrent cycles cost it several times more CPU
# per record than serving requests does (docs/local-broker.md has the per-thread measurements).
# FACEGUARD_KAFKA_JVM_OPTIONS replaces them ("-XX:+UseG1GC" for the JVM's defaults; ops/bench_broker.py compares).
JVM_OPTIONS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"


def java_command(broker: Broker) -> list[str]:
    heap = os.environ.get("FACEGUARD_KAFKA_HEAP", "-Xms256m -Xmx1g").split()
    return [
        "java",
        *heap,
        *os.environ.get("FACEGUARD_KAFKA_JVM_OPTIONS", JVM_OPTIONS).split(),
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={LOG_CONFIG}",
        f"-Dkafka.logs.dir={broker.data}",
        "-cp",
        f"{LIBS}/*",
    ]


def start(broker: Broker, port: int | None, timeout: float) -> str:
    """Start the broker (formatting storage the first time) and wait until it serves."""
    install()
    if broker.pid() is not None:
        log(f"already running (pid {broker.pid()}) at {broker.bootstrap()}")
        return broker.bootstrap()
    if broker.port() is None:
        chosen = port if port is not None else DEFAULT_PORT
        write_config(broker, chosen or free_port())
    elif port not in (None, 0, broker.port()):
        raise BrokerError(
            f"{broker.data} was set up for port {broker.port()}; stop it and remove the folder to change ports"
        )
    format_storage(broker)
    ensure_port_free(broker)
    if broker.log.exists():
        broker.log.unlink()
    with broker.console.open("ab") as console:
        process = subprocess.Popen(
            [*java_command(broker), "kafka.Kafka", str(broker.config)],
            stdout=console,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    broker.pid_file.write_text(str(process.pid))
    started = time.monotonic()
    wait_ready(broker, process, timeout)
    log(
        f"started in {time.monotonic() - started:.1f}s (pid {process.pid}) "
        f"at {broker.bootstrap()}; data in {broker.data}"
    )
    return broker.bootstrap()


def ensure_port_free(broker: Broker) -> None:
    if accepts(broker):
        raise BrokerError(
            f"port {broker.port()} is already in use by another process; "
            "pick another with --port or a new --data folder"
        )


def wait_ready(broker: Broker, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            broker.pid_file.unlink(missing_ok=True)
            tail = broker.console.read_text(errors="replace")[-3000:]
            server_log = broker.log.read_text(errors="replace")[-3000:] if broker.log.exists() else ""
            raise BrokerError(f"the broker exited with status {process.returncode}:\n{tail}\n{server_log}")
        if broker.log.exists() and READY_MARKER in broker.log.read_text(errors="replace") and accepts(broker):
            return
        time.sleep(0.2)
    stop(broker, timeout=10)
    raise BrokerError(f"the broker did not become ready within {timeout:.0f}s; see {broker.log}")


def accepts(broker: Broker) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", broker.port() or 0)) == 0


@contextlib.contextmanager
def running(folder: Path, start_timeout: float = 120.0, stop_timeout: float = 30.0) -> Iterator[str]:
    """A broker of its own in `folder`, on a free loopback port: yields its bootstrap address, stops it after."""
    broker = Broker(folder)
    bootstrap = start(broker, 0, start_timeout)
    try:
        yield bootstrap
    finally:
        stop(broker, stop_timeout)


def stop(broker: Broker, timeout: float) -> None:
    """Stop the broker gracefully (SIGTERM: controlled shutdown), SIGKILL after `timeout`."""
    pid = broker.pid()
    if pid is None:
        broker.pid_file.unlink(missing_ok=True)
        log("not running")
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and broker.pid() is not None:
        time.sleep(0.2)
    if broker.pid() is not None:
        log(f"pid {pid} did not stop within {timeout:.0f}s; killing it")
        os.killpg(pid, signal.SIGKILL)
    broker.pid_file.unlink(missing_ok=True)
    log(f"stopped (pid {pid})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["install", "start", "stop", "status"])
    parser.add_argument(
        "--data", type=Path, default=DEFAULT_DATA, help="the broker's data folder (default: %(default)s)"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=None,
        help=f"listener port at first start; 0 picks a free one (default {DEFAULT_PORT})",
    )
    parser.add_argument("--timeout", type=float, default=90.0, help="seconds to wait for start or stop")
    args = parser.parse_args(argv)
    broker = Broker(args.data.resolve())
    try:
        if args.command == "install":
            install()
        elif args.command == "start":
            print(start(broker, args.port, args.timeout), flush=True)
        elif args.command == "stop":
            stop(broker, args.timeout)
        else:
            pid = broker.pid()
            print(f"running (pid {pid}) at {broker.bootstrap()}" if pid else "stopped")
            return 0 if pid else 3
    except BrokerError as exc:
        log(f"error: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
