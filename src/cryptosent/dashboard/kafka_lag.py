"""Consumer lag of the processor: Kafka's high watermarks against the offsets stored with the rows.

The stored offsets (table `kafka_offsets`, sink 'postgres') say what is really in the database;
when the table has none for the group, the group's committed offsets in Kafka stand in. Kafka
being unreachable is an ordinary answer here (None), never an exception: the page stays up.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

_LOG = logging.getLogger("cryptosent.dashboard.kafka")


@dataclass(frozen=True)
class TopicPositions:
    """Per partition: the high watermark and the group's committed offset (-1 if none)."""

    high: dict[int, int]
    committed: dict[int, int]


def topic_positions(
    kafka_config: Mapping[str, str], group: str, topic: str, timeout: float = 2.0
) -> TopicPositions | None:
    """High watermarks and committed offsets of `group` on `topic`; None if Kafka can't say."""
    try:
        from confluent_kafka import Consumer, KafkaException, TopicPartition
    except ImportError:  # pragma: no cover - a dependency of the package
        return None
    conf: dict[str, object] = {
        **kafka_config,
        "group.id": group,
        "enable.auto.commit": False,
        "socket.timeout.ms": int(timeout * 1000),
        "logger": _LOG,
    }
    try:
        consumer = Consumer(conf)
    except KafkaException:
        return None
    try:
        meta = consumer.list_topics(topic, timeout=timeout)
        found = meta.topics.get(topic)
        if found is None or found.error is not None:
            return None
        partitions = [TopicPartition(topic, p) for p in sorted(found.partitions)]
        high = {
            tp.partition: consumer.get_watermark_offsets(tp, timeout=timeout, cached=False)[1]
            for tp in partitions
        }
        committed = {tp.partition: tp.offset for tp in consumer.committed(partitions, timeout)}
        return TopicPositions(high=high, committed=committed)
    except (KafkaException, RuntimeError, TypeError):
        return None
    finally:
        consumer.close()


def consumer_lag(positions: TopicPositions, stored: Mapping[int, int]) -> dict[int, int]:
    """Messages not yet stored, per partition: high watermark minus the stored (or committed)
    offset; a partition nobody has read yet lags by its whole high watermark."""
    lag = {}
    for partition, high in positions.high.items():
        done = stored.get(partition)
        if done is None:
            done = max(positions.committed.get(partition, -1), 0)
        lag[partition] = max(high - done, 0)
    return lag
