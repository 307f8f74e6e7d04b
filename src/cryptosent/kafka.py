"""Kafka for every part of cryptosent: client configurations (connection and security, producer,
consumer, admin), the topic check that fails fast with one line, and librdkafka's logging.

The producer (`ingest`), the processor, the dashboard's lag probe, the benchmarks and the tests
all build their clients from here, so SASL/SSL settings reach every client the same way.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Final, Protocol

from cryptosent.config import Settings
from cryptosent.errors import FatalError, TransientError
from cryptosent.runtime import StopSignal

_CHECK_SLICE_S: Final = 0.25
"""How long one metadata request of the topic check may wait before the stop is looked at."""


class KafkaUnavailable(TransientError):
    """The broker cannot be reached or did not acknowledge in time."""

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message, service="Kafka", reason=reason)


class MissingTopic(FatalError):
    """The topic does not exist on the cluster (cryptosent never creates topics by accident)."""


def connection_config(settings: Settings) -> dict[str, str]:
    """librdkafka's connection settings (bootstrap servers, security) shared by all clients."""
    conf = {
        "bootstrap.servers": settings.kafka_bootstrap,
        "security.protocol": settings.kafka_security_protocol,
    }
    if settings.kafka_sasl_mechanism:
        conf["sasl.mechanism"] = settings.kafka_sasl_mechanism
    if settings.kafka_sasl_username:
        conf["sasl.username"] = settings.kafka_sasl_username
    if settings.kafka_sasl_password:
        conf["sasl.password"] = settings.kafka_sasl_password.get_secret_value()
    if settings.kafka_ssl_ca_location:
        conf["ssl.ca.location"] = settings.kafka_ssl_ca_location
    return conf


def producer_config(settings: Settings) -> dict[str, Any]:
    """Producer settings: idempotent, acks=all, lz4, batched; on top of the connection."""
    return {
        **connection_config(settings),
        "enable.idempotence": True,  # implies acks=all and ordered, de-duplicated retries
        "acks": "all",
        "compression.type": "lz4",
        "linger.ms": 20,
        "batch.size": 1_000_000,
        "queue.buffering.max.messages": 500_000,
        "queue.buffering.max.kbytes": 512 * 1024,
        "delivery.timeout.ms": 120_000,
        "statistics.interval.ms": 0,
    }


def consumer_config(settings: Settings, group: str | None = None) -> dict[str, Any]:
    """Consumer settings of the processor: manual commits after the sinks, a new group reads
    from the start of the topic. ``group`` defaults to the configured consumer group."""
    return {
        **connection_config(settings),
        "group.id": group or settings.consumer_group,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "enable.partition.eof": False,
        # a sink outage is waited out with retries; stay in the group meanwhile
        "max.poll.interval.ms": 600_000,
        # how soon a dead member's partitions move (CRYPTOSENT_KAFKA_SESSION_TIMEOUT_MS)
        "session.timeout.ms": settings.kafka_session_timeout_ms,
        "fetch.min.bytes": 1,
        # a long-poll fetch holds the broker connection; keep it short so offset queries for
        # lag and --until-idle are not stuck behind it
        "fetch.wait.max.ms": 100,
        "queued.max.messages.kbytes": 256 * 1024,
    }


def admin_config(settings: Settings) -> dict[str, Any]:
    """AdminClient settings (topic creation in the stack, benchmarks and tests)."""
    return connection_config(settings)


class _Flushable(Protocol):
    def flush(self, timeout: float = -1) -> int: ...


def flush_until(producer: _Flushable, timeout_s: float, stop: StopSignal | None = None) -> int:
    """Wait for a producer's delivery reports up to timeout_s or, once stopped, the stop's
    grace (a broker that is down must not hold a stopping command); messages still queued."""
    deadline = time.monotonic() + timeout_s
    while True:
        left = deadline - time.monotonic()
        grace = stop.grace_left() if stop is not None else None
        if grace is not None:
            left = min(left, grace)
        remaining = int(producer.flush(max(0.0, min(left, 0.1))))
        if not remaining or left <= 0:
            return remaining


def quiet_logger(name: str) -> logging.Logger:
    """A logger for a client's librdkafka messages that prints nothing.

    librdkafka reports every failed connection attempt; where a command already says what
    matters (a progress line, a summary, one error line), that chatter stays out of stderr.
    """
    logger = logging.getLogger(f"cryptosent.kafka.{name}")
    if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
        logger.addHandler(logging.NullHandler())
    logger.propagate = False
    return logger


class _MetadataClient(Protocol):
    def list_topics(self, topic: str | None = None, timeout: float = -1) -> Any: ...


def check_topic(
    client: _MetadataClient,
    topic: str,
    bootstrap: str,
    timeout_s: float = 10.0,
    stop: StopSignal | None = None,
) -> int:
    """Fail fast with one line if Kafka is unreachable or topic is missing; return partitions.

    The metadata request is repeated in short slices so that a stop (Ctrl-C, SIGTERM, the end of
    ``--duration``) ends the wait for a broker that is down or silent at once."""
    started = time.monotonic()
    while True:
        left = started + timeout_s - time.monotonic()
        try:
            metadata = client.list_topics(topic, timeout=max(0.05, min(left, _CHECK_SLICE_S)))
            break
        except Exception as err:  # librdkafka raises KafkaException with a transport error
            stopped = stop is not None and stop.is_set
            if time.monotonic() < started + timeout_s and not stopped:
                continue
            waited = f"no answer in {time.monotonic() - started:.1f} s" + (
                f", stopped: {stop.reason}" if stop is not None and stopped else ""
            )
            raise KafkaUnavailable(
                f"Kafka unreachable at {bootstrap}: {err} ({waited}; start the local stack with "
                "`cryptosent stack up`, or set CRYPTOSENT_KAFKA_BOOTSTRAP)",
                reason=str(err),
            ) from None
    info = metadata.topics.get(topic)
    if info is None or info.error is not None or not info.partitions:
        raise MissingTopic(
            f"Kafka topic {topic!r} does not exist at {bootstrap} "
            "(`cryptosent stack up` creates it; on your own cluster create it first)"
        )
    return len(info.partitions)


def probe_topic(
    settings: Settings, topic: str | None = None, stop: StopSignal | None = None
) -> int:
    """Check with a short-lived, quiet client that Kafka answers and the topic exists."""
    from confluent_kafka import Producer

    probe = Producer(connection_config(settings), logger=quiet_logger("probe"))
    return check_topic(probe, topic or settings.topic, settings.kafka_bootstrap, stop=stop)
