"""A volume spike in the last closed minute becomes a row in `alerts` and a message on Kafka."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic
from conftest import Pipeline

from cryptosent.kafka import admin_config, connection_config


def test_volume_surge_is_stored_and_published(pipeline: Pipeline) -> None:
    alerts_topic = f"{pipeline.topic}.alerts"
    admin = AdminClient(admin_config(pipeline.settings))
    for future in admin.create_topics([NewTopic(alerts_topic, num_partitions=1)]).values():
        future.result(timeout=30)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    producer = Producer(connection_config(pipeline.settings))
    n = 0

    def send(minute: datetime, count: int, text: str) -> None:
        nonlocal n
        for i in range(count):
            n += 1
            stamp = (minute + timedelta(seconds=i % 60)).isoformat()
            body = {"id": f"a{n}", "text": text, "created_at": stamp}
            producer.produce(pipeline.topic, json.dumps(body).encode(), f"a{n}".encode())

    pipeline.env["CRYPTOSENT_ALERTS_TOPIC"] = alerts_topic
    # the processor runs before the data exists: its first alert check sees empty minutes,
    # and the spike must still be found once the tweets are processed
    processor = pipeline.start("process")
    time.sleep(6)
    for back in range(2, 12):  # a quiet baseline: 5 DOGE tweets a minute for 10 minutes
        send(now - timedelta(minutes=back), 5, "$DOGE steady as usual")
    send(now - timedelta(minutes=1), 60, "$DOGE to the moon, amazing pump! 🚀")
    assert producer.flush(30) == 0
    deadline = time.monotonic() + 120
    while pipeline.scalar("select count(*) from tweets") != 110:
        assert time.monotonic() < deadline and processor.poll() is None
        time.sleep(0.2)
    processor.send_signal(signal.SIGINT)  # stopping runs a last alert check
    _, stderr = processor.communicate(timeout=120)
    assert processor.returncode == 0, stderr
    rows = pipeline.query("select coin, kind, value, baseline from alerts order by kind")
    kinds = {(coin, kind) for coin, kind, _v, _b in rows}
    assert ("DOGE", "volume_surge") in kinds
    surge = next(r for r in rows if r[1] == "volume_surge")
    assert surge[2] == 60.0 and abs(float(str(surge[3])) - 50 / 30) < 1e-9
    published = subprocess.run(
        ["kcat", "-b", pipeline.settings.kafka_bootstrap, "-C", "-t", alerts_topic,
         "-o", "beginning", "-e", "-q"],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    messages = [json.loads(line) for line in published.stdout.splitlines()]
    assert {(m["coin"], m["kind"]) for m in messages} == kinds
    # a second run re-evaluates nothing twice: alerts are stored and published once
    again = pipeline.cli("process", "--until-idle")
    assert again.returncode == 0, again.stderr
    assert len(pipeline.query("select id from alerts")) == len(rows)
