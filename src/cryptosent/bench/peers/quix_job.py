"""The same job as the seed-style peer, written with Quix Streams' documented idioms.

`Application` (at-least-once, default checkpointing: a commit every 5 s), a
`StreamingDataFrame` with `.apply` (vaderSentiment), its `PostgreSQLSink` and its `S3FileSink`
in Parquet format, both flushed at each checkpoint. Runs in its own venv (see
`cryptosent.bench.peers.quix_venv`: quixstreams pins older confluent-kafka and pydantic-settings
than cryptosent), as `<venv>/bin/python quix_job.py JOB.json`; it imports nothing from
cryptosent. It stops after `job["count"]` tweets (`Application.run(count=...)`, which counts
the outputs of both sink branches).
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from psycopg2.extensions import parse_dsn  # type: ignore[import-untyped, import-not-found, unused-ignore]
from quixstreams import Application  # type: ignore[import-not-found, unused-ignore]
from quixstreams.kafka.configuration import (  # type: ignore[import-not-found, unused-ignore]
    ConnectionConfig,
)
from quixstreams.sinks.community.file.s3 import (  # type: ignore[import-not-found, unused-ignore]
    S3FileSink,
)
from quixstreams.sinks.community.postgresql import (  # type: ignore[import-not-found, unused-ignore]
    PostgreSQLSink,
)
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

analyzer = SentimentIntensityAnalyzer()


def score(tweet: dict[str, Any]) -> dict[str, Any]:
    """One tweet -> the row both sinks store."""
    scores = analyzer.polarity_scores(tweet["text"])
    compound = scores["compound"]
    label = "positive" if compound >= 0.05 else "negative" if compound <= -0.05 else "neutral"
    return {
        "id": tweet["id"],
        "created_at": datetime.fromisoformat(tweet["created_at"]),
        "text": tweet["text"],
        "username": (tweet.get("author") or {}).get("username"),
        "compound": compound,
        "pos": scores["pos"],
        "neu": scores["neu"],
        "neg": scores["neg"],
        "label": label,
    }


def main(job: dict[str, Any]) -> None:
    """Build the dataframe, attach both sinks, run until job["count"] tweets are processed."""
    app = Application(
        broker_address=ConnectionConfig.from_librdkafka_dict(job["kafka"]),
        consumer_group=job["group"],
        auto_offset_reset="earliest",
    )
    topic = app.topic(job["topic"], value_deserializer="json")
    dsn = parse_dsn(job["database_url"])
    postgres = PostgreSQLSink(
        host=dsn["host"],
        port=int(dsn.get("port", 5432)),
        dbname=dsn["dbname"],
        user=dsn["user"],
        password=dsn.get("password", ""),
        table_name=job["table"],
    )
    s3 = job["s3"]
    lake = S3FileSink(
        bucket=s3["bucket"],
        directory=s3["prefix"],
        format="parquet",
        aws_access_key_id=s3["access_key"],
        aws_secret_access_key=s3["secret_key"],
        region_name=s3["region"],
        endpoint_url=s3["endpoint_url"],
    )
    sdf = app.dataframe(topic)
    sdf = sdf.apply(score)
    sdf.sink(postgres)
    sdf.sink(lake)
    # each message gives one output per sink branch: two per tweet
    app.run(count=2 * job["count"], collect=False)


if __name__ == "__main__":
    main(json.loads(Path(sys.argv[1]).read_text()))
