"""The dead-letter queue: invalid messages go to `<topic>.dlq` with the reason in a header.

A dead letter is acknowledged by Kafka before any sink gets the batch it came from, so no sink's
stored offsets can move past an invalid message whose dead letter was lost.
"""

from __future__ import annotations

from collections.abc import Sequence

from confluent_kafka import KafkaError, Message, Producer

from cryptosent.kafka import KafkaUnavailable, flush_until
from cryptosent.processor.transform import DeadLetter
from cryptosent.runtime import StopSignal

# bytes of an invalid message's value kept in its dead letter (the rest is cut, see `truncated`)
DLQ_VALUE_LIMIT = 512 * 1024
FLUSH_TIMEOUT_S = 30.0


class DeadLetters:
    """Sends invalid messages, unchanged (up to DLQ_VALUE_LIMIT), to the dead-letter topic."""

    def __init__(
        self, producer: Producer, topic: str, source_topic: str, stop: StopSignal | None = None
    ) -> None:
        self.producer = producer
        self.topic = topic
        self.source_topic = source_topic
        self.stop = stop

    def send(self, dead: Sequence[DeadLetter]) -> None:
        """Produce every dead letter and wait for Kafka's acknowledgements (KafkaUnavailable if
        one is missing: the caller retries, a retry may send some twice)."""
        failures: list[str] = []

        def delivered(err: KafkaError | None, _message: Message) -> None:
            if err is not None:
                failures.append(err.str())

        for message, reason in dead:
            headers: list[tuple[str, str | bytes | None]] = [
                ("error", reason.encode()),
                ("source.topic", self.source_topic.encode()),
                ("source.partition", str(message.partition()).encode()),
                ("source.offset", str(message.offset()).encode()),
            ]
            value = message.value()
            if value is not None and len(value) > DLQ_VALUE_LIMIT:
                # a message near the broker's size limit no longer fits once headers are added
                # (the producer refused it and the processor died on it, again after every
                # restart): keep its head, and say how long it was
                headers.append(("truncated", str(len(value)).encode()))
                value = value[:DLQ_VALUE_LIMIT]
            self.producer.produce(
                self.topic, value, message.key(), headers=headers, on_delivery=delivered
            )
        remaining = flush_until(self.producer, FLUSH_TIMEOUT_S, self.stop)
        if remaining or failures:
            count = remaining + len(failures)
            detail = (
                failures[0] if failures else f"no acknowledgement within {FLUSH_TIMEOUT_S:.0f} s"
            )
            raise KafkaUnavailable(
                f"{count} dead letters not acknowledged by Kafka ({self.topic}): {detail}",
                reason=f"{count} dead letters not acknowledged: {detail}",
            )
