"""`cryptosent process --until-idle` ends when both streams (tweets and prices) are idle, also
when a consumer group's assignment is held up.

A member that is in a group but stops polling (its thread busy or blocked; heartbeats still go
out from librdkafka's own thread) holds every rebalance of that group for its rebalance timeout,
`max.poll.interval.ms` (ten minutes in the processor's settings): a new member gets no assignment
until then. `--until-idle` used to wait for that assignment even when the topic held nothing at
all: the run stored every tweet, then waited on the empty prices topic (here it had not ended
after 100 s; the hang reported from the suite lasted more than ten minutes, `prices: 0
consumed`). An empty topic is now idle whatever the group does.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
from confluent_kafka import Consumer
from conftest import Pipeline

from cryptosent.kafka import consumer_config

pytestmark = pytest.mark.integration

# the held-up assignment would last this long (the stuck member's rebalance timeout); the run
# must end well before it
STUCK_S = 120


@pytest.fixture
def stuck_price_member(pipeline: Pipeline) -> Iterator[Consumer]:
    """A member of the run's price group that got its assignment, then stops polling."""
    settings = pipeline.settings.model_copy(
        update={"consumer_group": pipeline.env["CRYPTOSENT_CONSUMER_GROUP"]}
    )
    config = consumer_config(settings, group=f"{settings.consumer_group}.prices")
    config["max.poll.interval.ms"] = STUCK_S * 1000
    member = Consumer(config)
    assigned: list[int] = []
    member.subscribe(
        [pipeline.env["CRYPTOSENT_PRICES_TOPIC"]],
        on_assign=lambda _c, partitions: assigned.extend(p.partition for p in partitions),
    )
    deadline = time.monotonic() + 60
    while not assigned:
        assert time.monotonic() < deadline, "the stuck member got no assignment"
        member.poll(0.2)
    yield member  # no poll from here on: the group's next rebalance waits for it
    member.close()


@pytest.mark.timeout(STUCK_S + 60)
def test_until_idle_ends_on_an_empty_prices_topic_whose_group_is_held_up(
    pipeline: Pipeline, stuck_price_member: Consumer
) -> None:
    p = pipeline
    assert p.cli("generate", "--count", "300", "--rate", "max", "--seed", "5").returncode == 0
    started = time.monotonic()
    run = p.cli("process", "--until-idle", timeout=STUCK_S - 20)
    took = time.monotonic() - started
    assert run.returncode == 0, run.stderr
    assert "process: 300 consumed, 300 stored" in run.stdout
    peak = re.search(r"lake objects; peak memory ([\d,]+) MiB\n", run.stdout)
    assert peak is not None and 50 < int(peak[1].replace(",", "")) < 4096, run.stdout
    assert "prices: 0 consumed" in run.stdout
    assert p.scalar("select count(*) from tweets") == 300
    print(f"UNTIL-IDLE with a held-up price group: {took:.1f} s")
    assert took < 60
