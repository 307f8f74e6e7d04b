"""The price stream on the real stack: `cryptosent prices replay FILE` then `cryptosent process
--until-idle` lands exactly in `price_minute` and the lake's prices/ layer; invalid messages go
to the prices dead-letter topic with their reasons; late trades for minutes already written merge
exactly; a processor SIGKILLed mid-run and restarted leaves `price_minute` exact."""

from __future__ import annotations

import io
import json
import random
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from conftest import Pipeline
from faults_support import Background, wait_for

from cryptosent.config import Settings
from cryptosent.kafka import admin_config, connection_config

pytestmark = pytest.mark.integration

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
COINS = ["BTC", "ETH", "SOL", "DOGE"]
Bar = tuple[float, float, float, float, float, int]


@pytest.fixture
def prices_topic(settings: Settings) -> Iterator[str]:
    """A fresh `prices`-like topic (6 partitions) and its dead-letter topic."""
    from confluent_kafka.admin import AdminClient
    from confluent_kafka.cimpl import NewTopic

    name = f"test-prices-{uuid.uuid4().hex[:10]}"
    admin = AdminClient(admin_config(settings))
    futures = admin.create_topics(
        [NewTopic(name, num_partitions=6), NewTopic(f"{name}.dlq", num_partitions=1)]
    )
    for future in futures.values():
        future.result(timeout=30)
    yield name
    for future in admin.delete_topics([name, f"{name}.dlq"]).values():
        future.result(timeout=30)


@pytest.fixture
def prices(pipeline: Pipeline, prices_topic: str) -> Pipeline:
    """The test's pipeline with its own prices topic; small batches, so trades of one minute
    arrive in several batches and late ones merge into minutes already written."""
    pipeline.env.update(
        CRYPTOSENT_PRICES_TOPIC=prices_topic,
        CRYPTOSENT_PRICES_DLQ_TOPIC=f"{prices_topic}.dlq",
        CRYPTOSENT_BATCH_SIZE="250",
    )
    return pipeline


def stamp(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def trades(n: int, seed: int, minutes: int = 20) -> list[dict[str, object]]:
    """n trades in file order: mostly in time order, every 7th one late (1-6 minutes back), some
    sharing a timestamp; sizes in 1/8 steps so every sum of them is exact in any order."""
    rng = random.Random(seed)
    out: list[dict[str, object]] = []
    for i in range(n):
        ts = T0 + timedelta(seconds=minutes * 60 * i / n)
        if i % 7 == 3:
            ts -= timedelta(minutes=rng.randint(1, 6), milliseconds=rng.randint(0, 59_999))
        coin = rng.choice(COINS)
        if i % 11 == 5 and out:
            # the same coin at the same instant as the last trade: open / close by send order
            ts, coin = datetime.fromisoformat(str(out[-1]["ts"])), str(out[-1]["coin"])
        record: dict[str, object] = {
            "coin": coin,
            "ts": stamp(max(ts, T0 - timedelta(minutes=6))),
            "price": round(rng.uniform(90, 110), 4),
            "source": "replay-test",
        }
        if i % 13:
            record["size"] = rng.randint(0, 40) / 8
        out.append(record)
    return out


def write_file(path: Path, records: list[dict[str, object]], bad: Sequence[str] = ()) -> None:
    lines = [json.dumps(r) for r in records]
    for i, line in enumerate(bad):
        lines.insert(1 + i * 97, line)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def recompute(records: list[dict[str, object]]) -> dict[tuple[str, datetime], Bar]:
    """Minute bars from trades in the order they were sent: open / close by (ts, send order)."""
    groups: dict[tuple[str, datetime], list[tuple[datetime, int, dict[str, object]]]] = {}
    for seq, r in enumerate(records):
        ts = datetime.fromisoformat(str(r["ts"]))
        minute = ts.replace(second=0, microsecond=0)
        groups.setdefault((str(r["coin"]), minute), []).append((ts, seq, r))
    bars: dict[tuple[str, datetime], Bar] = {}
    for key, rows in groups.items():
        rows.sort(key=lambda row: (row[0], row[1]))
        values = [float(str(row[2]["price"])) for row in rows]
        volume = sum(float(str(row[2].get("size", 0))) for row in rows)
        bars[key] = (values[0], max(values), min(values), values[-1], volume, len(rows))
    return bars


def stored_bars(p: Pipeline) -> dict[tuple[str, datetime], Bar]:
    rows = p.query("select coin, minute, open, high, low, close, volume, trades from price_minute")
    return {
        (str(r[0]), r[1]): (float(r[2]), float(r[3]), float(r[4]), float(r[5]),  # type: ignore[arg-type]
                            float(r[6]), int(r[7]))  # type: ignore[arg-type,call-overload]
        for r in rows
    }  # fmt: skip


def lake_prices(p: Pipeline) -> Counter[tuple[object, ...]]:
    """(coin, ts, price, size, source) of every row of the lake's prices/ layer."""
    rows: Counter[tuple[object, ...]] = Counter()
    for key in p.live_lake_tables("prices"):
        assert key.startswith("prices/dt=") and "/hour=" in key and key.endswith(".parquet"), key
        for row in pq.read_table(io.BytesIO(p.read_object(key))).to_pylist():
            rows[(row["coin"], row["ts"], row["price"], row["size"], row["source"])] += 1
    return rows


def as_lake_rows(records: list[dict[str, object]]) -> Counter[tuple[object, ...]]:
    return Counter(
        (r["coin"], datetime.fromisoformat(str(r["ts"])), r["price"], r.get("size"), r["source"])
        for r in records
    )


def dead_letters(p: Pipeline, topic: str, count: int) -> list[tuple[bytes, dict[str, bytes]]]:
    """The first count messages of the dead-letter topic: (value, headers)."""
    consumer = Consumer({**connection_config(p.settings), "group.id": f"dlq-{uuid.uuid4().hex}"})
    consumer.assign([TopicPartition(topic, 0, 0)])
    found: list[tuple[bytes, dict[str, bytes]]] = []
    try:
        for _ in range(100):
            for m in consumer.consume(count - len(found), timeout=0.5):
                if m.error() is None:
                    found.append((m.value() or b"", dict(m.headers() or [])))  # type: ignore[arg-type]
            if len(found) >= count:
                break
    finally:
        consumer.close()
    return found


def produce_raw(p: Pipeline, topic: str, values: list[bytes]) -> None:
    producer = Producer(connection_config(p.settings))
    for value in values:
        producer.produce(topic, value, key=b"BTC")
    assert producer.flush(30) == 0


def offsets_stored(p: Pipeline, topic: str, sink: str) -> int:
    return int(
        str(
            p.scalar(
                "select coalesce(sum(next_offset), 0) from kafka_offsets"
                f" where topic = '{topic}' and sink = '{sink}'"
            )
        )
    )


@pytest.mark.timeout(300)
def test_replayed_prices_land_exactly_and_late_trades_merge(
    prices: Pipeline, prices_topic: str, tmp_path: Path
) -> None:
    p = prices
    first = trades(1_500, seed=1)
    path = tmp_path / "prices.jsonl"
    write_file(
        path,
        first,
        bad=['{"coin":"BTC","ts":"2026-01-01T12:00:00Z","price":0}', "not json",
             '{"coin":"NOTACOIN","ts":"2026-01-01T12:00:00Z","price":1}'],
    )  # fmt: skip
    result = p.cli("prices", "replay", str(path))
    assert result.returncode == 0, result.stderr
    assert "1,500 delivered" in result.stdout
    assert "3 bad line(s) skipped" in " ".join(result.stderr.split())
    # invalid messages a replay would never send, from another producer
    invalid = [
        b"not json",
        b'{"coin":"BTC","ts":"2026-01-01T12:00:00Z","price":-5}',
        b'{"coin":"BTC","ts":"2026-01-01T12:00:00","price":5}',
        b'{"coin":"BTC","ts":"2999-01-01T00:00:00Z","price":5}',
    ]
    produce_raw(p, prices_topic, invalid)

    run = p.cli("process", "--until-idle")
    assert run.returncode == 0, run.stderr
    assert "prices: 1,504 consumed, 1,500 trades into price_minute" in run.stdout
    assert "4 dead-lettered" in run.stdout.splitlines()[-1]
    assert stored_bars(p) == recompute(first)
    assert lake_prices(p) == as_lake_rows(first)
    assert offsets_stored(p, prices_topic, "postgres") == 1_504
    assert offsets_stored(p, prices_topic, "lake") == 1_504
    assert p.scalar("select count(*) from lake_intents") == 0

    letters = dead_letters(p, f"{prices_topic}.dlq", 4)
    assert sorted(v for v, _ in letters) == sorted(invalid)
    reasons = {v: h["error"].decode() for v, h in letters}
    assert reasons[b"not json"].startswith("not JSON: ")
    assert reasons[invalid[1]] == "schema: `price` is -5.0; it must be a finite number > 0"
    assert reasons[invalid[2]] == "schema: `ts` has no UTC offset (RFC 3339 requires one)"
    assert reasons[invalid[3]].startswith("ts in the future (2999-01-01T00:00:00+00:00, received ")
    assert all(h["source.topic"] == prices_topic.encode() for _, h in letters)

    # late trades for minutes already written: earlier than their open, later than their close,
    # at the very instant of a stored open (sent later, so not the new open), and new minutes
    late = trades(400, seed=2, minutes=26)
    stored_open = p.query("select coin, open_ts from price_minute order by coin, minute limit 1")
    late.append(
        {"coin": stored_open[0][0], "ts": stamp(stored_open[0][1]), "price": 1.5,  # type: ignore[arg-type]
         "size": 0.5, "source": "replay-test"}
    )  # fmt: skip
    write_file(tmp_path / "late.jsonl", late)
    assert p.cli("prices", "replay", str(tmp_path / "late.jsonl")).returncode == 0
    again = p.cli("process", "--until-idle")
    assert again.returncode == 0, again.stderr
    assert "prices: 401 consumed" in again.stdout
    assert stored_bars(p) == recompute(first + late)
    assert lake_prices(p) == as_lake_rows(first + late)
    assert offsets_stored(p, prices_topic, "postgres") == 1_905


@pytest.mark.timeout(300)
def test_a_processor_killed_mid_run_leaves_price_minute_exact(
    prices: Pipeline, prices_topic: str, tmp_path: Path
) -> None:
    p = prices
    records = trades(30_000, seed=3, minutes=60)
    path = tmp_path / "prices.jsonl"
    write_file(path, records)
    assert p.cli("prices", "replay", str(path)).returncode == 0

    worker = Background(p, "process", log_dir=tmp_path / "logs")
    # killed once some batches are stored and before the last one
    wait_for(
        lambda: 2_000 <= offsets_stored(p, prices_topic, "postgres") < 30_000,
        timeout=120, what="a first part of the prices stored", step=0.05,
    )  # fmt: skip
    worker.kill()
    done = offsets_stored(p, prices_topic, "postgres")
    assert done < 30_000, "the processor finished before it was killed; the test needs more data"

    run = p.cli("process", "--until-idle")
    assert run.returncode == 0, run.stderr
    assert stored_bars(p) == recompute(records)
    assert offsets_stored(p, prices_topic, "postgres") == 30_000
    assert lake_prices(p) == as_lake_rows(records)
    assert p.scalar("select count(*) from lake_intents") == 0


@pytest.mark.timeout(300)
def test_a_missing_prices_topic_is_a_warning_and_tweets_are_still_processed(
    pipeline: Pipeline,
) -> None:
    p = pipeline
    missing = f"missing-prices-{uuid.uuid4().hex[:8]}"
    p.env.update(CRYPTOSENT_PRICES_TOPIC=missing)
    assert p.cli("generate", "--count", "300", "--rate", "max", "--seed", "5").returncode == 0
    run = p.cli("process", "--until-idle")
    assert run.returncode == 0, run.stderr
    stderr = " ".join(run.stderr.split())
    assert f"warning: Kafka topic '{missing}' does not exist at " in stderr
    assert "; processing tweets only" in stderr
    assert "process: 300 consumed, 300 stored" in run.stdout
    assert "prices:" not in run.stdout
    assert p.scalar("select count(*) from price_minute") == 0
