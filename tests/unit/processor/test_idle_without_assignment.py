"""`--until-idle` while the group's assignment is held up (a member that stopped polling holds
a rebalance for its max.poll.interval.ms): an empty topic is idle at once, a topic with messages
is not (the run waits for its partitions)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from fakes import Broker, FakeConsumer, FakeMessage, MemorySink, Store, processor


class HeldUpConsumer(FakeConsumer):
    """A member whose assignment never arrives; it answers metadata and watermark queries."""

    def __init__(self, broker: Broker, stop_after: int) -> None:
        super().__init__(broker)
        self.stop_after = stop_after
        self.stop: Any = None

    def consume(self, num_messages: int = 1, timeout: float = 0) -> list[FakeMessage]:
        self.calls += 1
        if self.calls >= self.stop_after:
            self.stop.set()  # the test's bound: a run still waiting is stopped here
        return []

    def list_topics(self, topic: str, timeout: float = 0) -> Any:
        partitions = {number: object() for number in self.broker.partitions}
        return SimpleNamespace(topics={topic: SimpleNamespace(error=None, partitions=partitions)})


@pytest.mark.parametrize(("per_partition", "idle"), [(0, True), (5, False)])
def test_until_idle_without_an_assignment(per_partition: int, idle: bool) -> None:
    broker = Broker.filled(partitions=3, per_partition=per_partition)
    consumer = HeldUpConsumer(broker, stop_after=200)
    run = processor(consumer, [MemorySink("postgres", Store(), mode="immediate")])
    consumer.stop = run.stop
    stats = run.run()
    assert not run.assignment_seen and stats.consumed == 0
    # empty: idle at the first check; with messages: still waiting when the bound stopped it
    assert (consumer.calls, run.stop.is_set) == ((1, False) if idle else (200, True))
    assert consumer.closed
