"""The processor loop with an in-memory consumer and sinks (no servers): every valid message
stored once per sink, dead letters sent, Kafka commits never ahead of what is stored, across
rebalances, sink outages and crashes."""

from __future__ import annotations

import pytest
from fakes import (
    BAD,
    Broker,
    Crash,
    FakeConsumer,
    FakeProducer,
    MemorySink,
    Store,
    processor,
)

from cryptosent.errors import TransientError


def sinks(
    pg: Store, lake: Store, *, flush_rows: int = 10**9, failures: int = 0
) -> list[MemorySink]:
    """A PostgreSQL-shaped sink (one write in flight) and a lake-shaped one (buffered)."""
    return [
        MemorySink("postgres", pg, mode="background", failures=failures),
        MemorySink("lake", lake, mode="buffered", flush_rows=flush_rows),
    ]


def assert_exact(broker: Broker, *stores: Store) -> None:
    """Each valid message once in every store; every store's offsets at the topic's end."""
    for store in stores:
        assert store.ids() == broker.valid_ids()
        assert store.offsets == broker.ends()


def never_ahead(broker: Broker, *stores: Store) -> FakeConsumer:
    """A consumer whose commits are checked against the stores at the moment they are made."""

    def check(offsets: dict[int, int]) -> None:
        for partition, offset in offsets.items():
            assert all(offset <= s.offsets.get(partition, 0) for s in stores), (offsets, stores)

    return FakeConsumer(broker, on_commit=check)


def test_every_valid_message_once_in_each_sink_and_invalid_ones_dead_lettered() -> None:
    broker = Broker.filled(partitions=3, per_partition=200, bad_every=7)
    pg, lake = Store(), Store()
    producer = FakeProducer()
    run = processor(never_ahead(broker, pg, lake), sinks(pg, lake, flush_rows=120), producer)
    stats = run.run()
    assert_exact(broker, pg, lake)
    assert stats.consumed == 600 and stats.stored == len(broker.valid_ids())
    assert stats.dlq == broker.invalid() == len(producer.sent)
    assert all(value == BAD for _topic, value, _headers in producer.sent)
    assert all(dict(h)["error"].startswith(b"not JSON: ") for _t, _v, h in producer.sent)
    assert broker.committed == broker.ends()
    assert stats.lake_objects == 0 and stats.batches > 3


def test_a_second_run_finds_nothing_new() -> None:
    broker = Broker.filled(partitions=2, per_partition=100, bad_every=5)
    pg, lake = Store(), Store()
    processor(FakeConsumer(broker), sinks(pg, lake)).run()
    producer = FakeProducer()
    stats = processor(FakeConsumer(broker), sinks(pg, lake), producer).run()
    assert stats.consumed == 0 and producer.sent == []
    assert_exact(broker, pg, lake)


@pytest.mark.parametrize("kind", ["revoke", "lost"])
def test_rebalance_mid_batch_then_another_member_takes_over(kind: str) -> None:
    # member A owns 0-2; before its 3rd poll it loses 1 and 2 while the PostgreSQL-shaped sink
    # has a batch in flight and the lake holds unflushed rows of all three partitions
    broker = Broker.filled(partitions=3, per_partition=300, bad_every=11)
    pg, lake = Store(), Store()
    a_sinks = sinks(pg, lake)
    member_a = FakeConsumer(broker, rebalances={3: (kind, [0])})  # type: ignore[dict-item]
    processor(member_a, a_sinks, batch_size=40).run()
    if kind == "revoke":
        # revoked partitions were flushed and committed before they moved
        assert broker.committed[1] == pg.offsets[1] == lake.offsets[1] > 0
    else:
        # lost ones were dropped unflushed: their next owner redoes them
        assert 1 not in lake.offsets
    # member B gets 1 and 2 and starts from what the sinks stored
    member_b = FakeConsumer(broker, assignment=[1, 2])
    processor(member_b, sinks(pg, lake), batch_size=40).run()
    assert_exact(broker, pg, lake)
    assert a_sinks[0].resumed == [[0, 1, 2], [0]]


def test_a_sink_failing_then_recovering_loses_and_doubles_nothing() -> None:
    broker = Broker.filled(partitions=2, per_partition=150)
    pg, lake = Store(), Store()
    parts = sinks(pg, lake, failures=3)
    run = processor(FakeConsumer(broker), parts)
    run.run()
    assert_exact(broker, pg, lake)
    # the retry read the error kind and backed off exponentially
    assert parts[0].sleeps == [0.5, 1.0, 2.0]


def test_a_fatal_error_is_not_retried() -> None:
    class Refused(Exception):
        pass

    broker = Broker.filled(partitions=1, per_partition=10)
    pg, lake = Store(), Store()
    parts = sinks(pg, lake)

    def refuse(batch: object) -> None:
        raise Refused("wrong credentials")

    parts[1]._write = refuse  # type: ignore[method-assign]
    with pytest.raises(Refused):
        processor(FakeConsumer(broker), parts).run()
    assert parts[1].sleeps == [] and all(sink.closed for sink in parts)


def test_crash_between_sink_flush_and_commit_replays_exactly() -> None:
    broker = Broker.filled(partitions=3, per_partition=400, bad_every=9)
    pg, lake = Store(), Store()
    commits = 0

    def die_on_second_commit(offsets: dict[int, int]) -> None:
        nonlocal commits
        commits += 1
        if commits == 2:
            raise Crash  # after the sinks flushed, before Kafka recorded the commit

    consumer = FakeConsumer(broker, on_commit=die_on_second_commit)
    with pytest.raises(Crash):
        processor(consumer, sinks(pg, lake, flush_rows=300), batch_size=60).run()
    stored_before = dict(lake.offsets)
    assert stored_before and any(
        broker.committed.get(p, 0) < offset for p, offset in stored_before.items()
    ), "the crash must leave Kafka's commit behind the stores"
    # a restart starts from the stored offsets (not Kafka's older commit): nothing twice
    processor(FakeConsumer(broker), sinks(pg, lake, flush_rows=300), batch_size=60).run()
    assert_exact(broker, pg, lake)
    assert broker.committed == broker.ends()


def test_crash_with_one_sink_behind_the_other() -> None:
    # PostgreSQL-shaped sink stores every batch, the lake had not flushed: after the crash the
    # member seeks to the lake's offsets and PostgreSQL skips what it already has
    broker = Broker.filled(partitions=2, per_partition=250)
    pg, lake = Store(), Store()
    parts = sinks(pg, lake)

    def crash() -> list[object]:
        raise Crash

    parts[1].flush = crash  # type: ignore[assignment, method-assign]
    with pytest.raises(Crash):
        processor(FakeConsumer(broker), parts).run()
    assert pg.offsets == broker.ends() and lake.offsets == {}
    processor(FakeConsumer(broker), sinks(pg, lake)).run()
    assert_exact(broker, pg, lake)


def test_a_stale_batch_rewinds_to_the_stored_offsets() -> None:
    # another member (a zombie's successor) stored partition 0 up to 100 behind our back
    broker = Broker.filled(partitions=1, per_partition=300)
    pg, lake = Store(), Store()
    parts = sinks(pg, lake)
    consumer = FakeConsumer(broker)
    run = processor(consumer, parts, batch_size=50)
    original = parts[0]._attempt

    def raced(batch: object) -> None:
        if not pg.offsets:
            # the other member's rows and offsets land first
            pg.rows += [(0, o, f"p0-{o}") for o in range(100)]
            pg.offsets[0] = 100
            lake.rows += [(0, o, f"p0-{o}") for o in range(100)]
            lake.offsets[0] = 100
        original(batch)  # type: ignore[arg-type]

    parts[0]._attempt = raced  # type: ignore[method-assign]
    run.run()
    assert_exact(broker, pg, lake)
    # refused as stale, then every sink was asked again where it stands
    assert parts[0].resumed == [[0], [0]] and parts[1].resumed == [[0], [0]]


def test_transient_error_kind_carries_the_service() -> None:
    err = TransientError("PostgreSQL unreachable at x: refused", service="PostgreSQL",
                         reason="refused\nmore")  # fmt: skip
    assert (err.service, err.reason, str(err)) == (
        "PostgreSQL",
        "refused",
        "PostgreSQL unreachable at x: refused",
    )


def test_the_commit_interval_commits_what_is_stored_without_flushing_a_buffer() -> None:
    from fakes import TOPIC, FakeMessage

    from cryptosent.processor.checkpoint import Checkpoint
    from cryptosent.processor.transform import Scorer, decode

    broker = Broker.filled(partitions=1, per_partition=30)
    pg, lake = Store(), Store()
    parts = [MemorySink("postgres", pg), MemorySink("lake", lake, mode="buffered")]
    consumer = FakeConsumer(broker)
    checkpoint = Checkpoint(parts, consumer, TOPIC, commit_interval_s=5.0, clock=lambda: 0.0)  # type: ignore[arg-type]
    assert checkpoint.resume([0]) == {0: -2}  # nothing stored anywhere: from the beginning
    messages = [FakeMessage(0, o, broker.partitions[0][o]) for o in range(30)]
    checkpoint.add(Scorer()(decode(messages)))
    assert pg.offsets == {0: 30} and lake.offsets == {} and parts[1].buffer
    checkpoint.tick(1.0)
    assert broker.commits == []  # not yet: the interval has not passed
    checkpoint.tick(6.0)
    # the interval commits the lowest stored offset: the lake has none yet, so nothing moves,
    # and the lake's buffer is left for its own flush
    assert broker.commits == [] and parts[1].buffer and lake.offsets == {}
    checkpoint.flush()
    assert lake.offsets == {0: 30} and broker.committed == {0: 30}


def test_without_a_buffered_sink_the_interval_keeps_kafka_current() -> None:
    from fakes import TOPIC, FakeMessage

    from cryptosent.processor.checkpoint import Checkpoint
    from cryptosent.processor.transform import Scorer, decode

    broker = Broker.filled(partitions=1, per_partition=20)
    pg = Store()
    checkpoint = Checkpoint([MemorySink("postgres", pg)], FakeConsumer(broker), TOPIC,  # type: ignore[arg-type]
                            commit_interval_s=5.0, clock=lambda: 0.0)  # fmt: skip
    checkpoint.resume([0])
    checkpoint.add(
        Scorer()(decode([FakeMessage(0, o, broker.partitions[0][o]) for o in range(20)]))
    )
    checkpoint.tick(6.0)
    assert broker.commits == [{0: 20}]
    checkpoint.tick(12.0)
    assert broker.commits == [{0: 20}]  # nothing new stored: no second commit
