"""The processor loop stops within the stop's grace in every state: consuming, a sink retrying an
outage, dead letters the broker does not acknowledge, a consumer whose close() waits for a broker
that is gone; what was stored stays stored (in-memory fakes, no servers)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from fakes import BAD, TOPIC, Broker, FakeConsumer, FakeProducer, MemorySink, Store

from cryptosent.errors import TransientError
from cryptosent.kafka import KafkaUnavailable
from cryptosent.processor.checkpoint import Checkpoint
from cryptosent.processor.dead_letters import DeadLetters
from cryptosent.processor.loop import Processor, ProcessorOptions, ProcessStats
from cryptosent.runtime import Backoff, Retry, StopSignal

pytestmark = pytest.mark.timeout(60)

BOUND_S = StopSignal.GRACE_S + StopSignal.ABANDON_AFTER_S + 0.5


def build(
    consumer: FakeConsumer, sinks: list[MemorySink], stop: StopSignal, producer: Any = None
) -> Processor:
    for sink in sinks:  # real waits on the stop, as the built processor's sinks do
        sink.retry = Retry(Backoff.exponential(0.5, 30.0), stop=stop)
    return Processor(
        consumer=consumer,  # type: ignore[arg-type]
        topic=TOPIC,
        checkpoint=Checkpoint(sinks, consumer, TOPIC),  # type: ignore[arg-type]
        dead_letters=DeadLetters(producer or FakeProducer(), f"{TOPIC}.dlq", TOPIC, stop),  # type: ignore[arg-type]
        retry=Retry(Backoff.exponential(0.5, 30.0), stop=stop),
        options=ProcessorOptions(batch_size=50, poll_timeout_s=0.01),
        stop=stop,
    )


def run_then_stop(
    processor: Processor, stop: StopSignal, after: float, first_batch: bool = True
) -> tuple[Any, float]:
    """run() on a thread, SIGINT-like stop `after` s after its first batch (the analyzers'
    first use is not what is measured): (stats or the error, seconds after the stop)."""
    outcome: list[ProcessStats | BaseException] = []

    def run() -> None:
        try:
            outcome.append(processor.run())
        except BaseException as err:
            outcome.append(err)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while first_batch and not processor.stats.batches and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(after)
    stopped = time.monotonic()
    stop.set("SIGINT")
    thread.join(30)
    assert not thread.is_alive()
    return outcome[0], time.monotonic() - stopped


def test_a_stop_while_consuming_flushes_and_commits() -> None:
    broker = Broker.filled(partitions=2, per_partition=100)
    pg, lake = Store(), Store()
    stop = StopSignal()
    sinks = [
        MemorySink("postgres", pg, mode="background"),
        MemorySink("lake", lake, mode="buffered"),
    ]
    stats, took = run_then_stop(build(FakeConsumer(broker), sinks, stop), stop, after=0.2)
    assert isinstance(stats, ProcessStats) and took < BOUND_S
    assert pg.ids() == lake.ids() == broker.valid_ids()  # the lake's buffer was flushed
    assert broker.committed == broker.ends()


def test_a_stop_while_a_sink_retries_an_outage_ends_with_that_outage() -> None:
    broker = Broker.filled(partitions=1, per_partition=10)
    stop = StopSignal()
    sinks = [MemorySink("postgres", Store(), mode="background", failures=10**9)]
    error, took = run_then_stop(build(FakeConsumer(broker), sinks, stop), stop, after=0.8)
    assert isinstance(error, TransientError) and "postgres is down" in str(error)
    assert took < BOUND_S


def test_a_stop_while_dead_letters_wait_for_a_broker_ends_with_kafka_unavailable() -> None:
    class Silent(FakeProducer):
        def produce(self, *args: Any, **kwargs: Any) -> None:
            self.sent.append((TOPIC, None, []))  # never acknowledged

        def flush(self, timeout: float = 0) -> int:
            time.sleep(timeout)
            return len(self.sent)

    broker = Broker({0: [BAD, BAD]})
    stop = StopSignal()
    sinks = [MemorySink("postgres", Store())]
    error, took = run_then_stop(
        build(FakeConsumer(broker), sinks, stop, Silent()), stop, 1.0, False
    )
    assert isinstance(error, KafkaUnavailable) and "dead letters not acknowledged" in str(error)
    assert took < BOUND_S


def test_a_consumer_close_that_waits_for_a_gone_broker_is_left_after_the_grace() -> None:
    class Stuck(FakeConsumer):
        def close(self) -> None:
            time.sleep(30)  # librdkafka waits 30 s for the commit in flight

    broker = Broker.filled(partitions=1, per_partition=10)
    store = Store()
    stop = StopSignal()
    stats, took = run_then_stop(build(Stuck(broker), [MemorySink("pg", store)], stop), stop, 0.5)
    assert isinstance(stats, ProcessStats) and took < BOUND_S
    assert store.ids() == broker.valid_ids()


def test_the_deadline_ends_the_processor_like_a_stop() -> None:
    broker = Broker.filled(partitions=1, per_partition=10)
    store = Store()
    stop = StopSignal(0.5)
    started = time.monotonic()
    stats = build(FakeConsumer(broker), [MemorySink("pg", store, mode="buffered")], stop).run()
    assert 0.5 <= time.monotonic() - started < 0.5 + BOUND_S
    assert stats.consumed == 10 and store.ids() == broker.valid_ids()
    assert stop.reason == "duration"
