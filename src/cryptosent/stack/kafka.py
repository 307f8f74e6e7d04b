"""Apache Kafka, single-node KRaft (broker and controller in one JVM), from Maven Central jars."""

from __future__ import annotations

import logging
import shutil
import subprocess
import uuid
from importlib import resources

from cryptosent.config import Settings
from cryptosent.kafka import quiet_logger
from cryptosent.stack.process import StackError, port_open, read_pid, spawn, terminate, wait_until

MARKER = "kafka.Kafka"
# health probes fail on purpose while the broker starts: keep librdkafka's chatter out of the CLI
_QUIET = logging.getLogger("cryptosent.stack.kafka.probe")
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False
START_TIMEOUT_S = 90.0


class KafkaServer:
    """The local broker: jars in .stack/kafka/libs, data in .stack/kafka/data."""

    name = "kafka"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.home = settings.stack_dir / "kafka"
        self.libs = self.home / "libs"
        self.data = self.home / "data"
        self.config_file = self.home / "server.properties"
        self.log_config = self.home / "log4j2.properties"
        self.log_file = settings.stack_dir / "logs" / "kafka.log"
        self.pid_file = settings.stack_dir / "run" / "kafka.pid"
        self.port = settings.stack_kafka_port
        self.controller_port = settings.stack_kafka_controller_port

    @property
    def address(self) -> str:
        """Where clients connect."""
        return f"127.0.0.1:{self.port}"

    def pid(self) -> int | None:
        """Pid of the broker started by `stack up`, if it runs."""
        return read_pid(self.pid_file)

    def healthy(self) -> bool:
        """The broker answers a metadata request."""
        if not port_open(self.port):
            return False
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": self.address}, logger=_QUIET)
        try:
            admin.list_topics(timeout=2)
        except Exception:
            return False
        return True

    def _java(self) -> str:
        java = shutil.which("java")
        if java is None:
            raise StackError("java not found: install a JDK 17+ (make setup does it) and retry")
        return java

    def _classpath(self) -> str:
        if not any(self.libs.glob("kafka_2.13-*.jar")):
            raise StackError(f"Kafka jars missing in {self.libs}: run `make setup` first")
        return str(self.libs / "*")

    def _write_config(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},"
            f"CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str(self.data.resolve()),
            "num.partitions": str(self.settings.topic_partitions),
            "auto.create.topics.enable": "false",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "6",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            # one local node: no reason to wait for more group members before assigning
            "group.initial.rebalance.delay.ms": "0",
            "log.retention.hours": "168",
            "log.segment.bytes": str(256 * 1024 * 1024),
        }
        self.config_file.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        template = resources.files("cryptosent.stack").joinpath("kafka-log4j2.properties")
        self.log_config.write_text(template.read_text())

    def _format_storage(self, java: str, classpath: str) -> None:
        if (self.data / "meta.properties").exists():
            return
        self.data.mkdir(parents=True, exist_ok=True)
        cluster_id = _kafka_uuid()
        result = subprocess.run(
            [java, "-cp", classpath, f"-Dlog4j2.configurationFile={self.log_config}",
             "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(self.config_file)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            last = (result.stderr or result.stdout).strip().splitlines()[-1:]
            raise StackError(f"Kafka storage format failed: {' '.join(last)}")

    def start(self) -> str:
        """Start the broker (idempotent); return what happened."""
        if self.pid() is not None:
            wait_until(self.healthy, timeout=START_TIMEOUT_S, what="Kafka", log_file=self.log_file)
            self.ensure_topics()  # topics added since the broker started (`prices`) appear too
            return "already running"
        for port in (self.port, self.controller_port):
            if port_open(port):
                raise StackError(
                    f"port {port} on 127.0.0.1 is taken by a process cryptosent did not start: "
                    f"stop it or set CRYPTOSENT_STACK_KAFKA_PORT / _CONTROLLER_PORT"
                )
        java, classpath = self._java(), self._classpath()
        self._write_config()
        self._format_storage(java, classpath)
        argv = [java, f"-Xmx{self.settings.stack_kafka_heap}", "-Xms256m", "-XX:+UseG1GC",
                "-Djava.awt.headless=true", f"-Dlog4j2.configurationFile={self.log_config}",
                f"-Dkafka.logs.dir={self.log_file.parent}", "-cp", classpath, MARKER,
                str(self.config_file)]  # fmt: skip
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        pid = spawn(argv, log_file=self.log_file, pid_file=self.pid_file)
        wait_until(
            self.healthy, timeout=START_TIMEOUT_S, what="Kafka", log_file=self.log_file, pid=pid
        )
        self.ensure_topics()
        return "started"

    def ensure_topics(self) -> None:
        """Create the pipeline's topics if they are missing."""
        from confluent_kafka.admin import AdminClient
        from confluent_kafka.cimpl import NewTopic

        s = self.settings
        admin = AdminClient({"bootstrap.servers": self.address}, logger=quiet_logger("stack"))
        existing = set(admin.list_topics(timeout=10).topics)
        wanted = [
            NewTopic(s.topic, num_partitions=s.topic_partitions, replication_factor=1),
            NewTopic(s.dlq_topic, num_partitions=1, replication_factor=1),
            NewTopic(s.alerts_topic, num_partitions=1, replication_factor=1),
            # prices are keyed by coin: one coin's trades stay in order on one partition
            NewTopic(s.prices_topic, num_partitions=s.topic_partitions, replication_factor=1),
            NewTopic(s.prices_dlq_topic, num_partitions=1, replication_factor=1),
        ]
        missing = [t for t in wanted if t.topic not in existing]
        if not missing:
            return
        futures = admin.create_topics(missing, operation_timeout=30)
        for topic, future in futures.items():
            try:
                future.result(timeout=30)
            except Exception as err:
                if "TOPIC_ALREADY_EXISTS" not in str(err):
                    raise StackError(f"could not create Kafka topic {topic}: {err}") from None

    def stop(self) -> str:
        """Stop the broker if `stack up` started it."""
        pid = self.pid()
        if pid is None:
            return "not running"
        terminate(pid, marker=MARKER, timeout=30)
        self.pid_file.unlink(missing_ok=True)
        return "stopped"


def _kafka_uuid() -> str:
    """A random Kafka cluster id: 16 random bytes, URL-safe base64 without padding.

    Like Kafka's own `Uuid.randomUuid`, an id that starts with '-' is drawn again: the
    storage tool's argument parser reads `-t -abc...` as an option and fails (1 in 64).
    """
    import base64

    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id
