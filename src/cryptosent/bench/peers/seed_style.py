"""The seed's processor, written the way that portfolio project writes it: a peer baseline.

One message at a time from Kafka, vaderSentiment, a row-by-row INSERT into PostgreSQL, and every
100 tweets a pandas DataFrame written as one Parquet object to S3 (the transaction committed
with it). Kafka offsets are auto-committed, as in the seed. Not optimised beyond that idiom, not
slowed down either. Run by `cryptosent bench` (stage `peers`), as
`python -m cryptosent.bench.peers.seed_style JOB.json`; the job file names the topic, group,
database, table, S3 prefix and how many tweets to expect (it exits once it has stored them).
"""

from __future__ import annotations

import io
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pandas as pd
import psycopg
from confluent_kafka import Consumer
from psycopg import sql
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

BATCH = 100  # tweets per Parquet object, as in the seed

CREATE = """
create table if not exists {table} (
    id text primary key,
    created_at timestamptz,
    text text,
    username text,
    compound double precision,
    pos double precision,
    neu double precision,
    neg double precision,
    label text,
    stored_at timestamptz not null default now()  -- read by the bench: first to last commit
)
"""
INSERT = (
    "insert into {table} (id, created_at, text, username, compound, pos, neu, neg, label)"
    " values (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
)


def label_of(compound: float) -> str:
    """VADER's standard thresholds."""
    if compound >= 0.05:
        return "positive"
    if compound <= -0.05:
        return "negative"
    return "neutral"


def main(job: dict[str, Any]) -> int:
    """Consume until `job["count"]` tweets are stored; return how many were stored."""
    consumer = Consumer({**job["kafka"], "group.id": job["group"], "auto.offset.reset": "earliest"})
    consumer.subscribe([job["topic"]])
    analyzer = SentimentIntensityAnalyzer()
    s3 = job["s3"]
    client = boto3.client(
        "s3",
        endpoint_url=s3["endpoint_url"],
        aws_access_key_id=s3["access_key"],
        aws_secret_access_key=s3["secret_key"],
        region_name=s3["region"],
    )
    conn = psycopg.connect(job["database_url"])
    table = job["table"]
    conn.execute(sql.SQL(CREATE).format(table=sql.Identifier(table)))
    conn.commit()
    cur = conn.cursor()
    insert = sql.SQL(INSERT).format(table=sql.Identifier(table))
    buffer: list[dict[str, Any]] = []
    stored = 0
    files = 0
    try:
        while stored < job["count"]:
            msg = consumer.poll(1.0)
            if msg is None:
                continue
            if msg.error():
                print(f"kafka error: {msg.error()}", file=sys.stderr)
                continue
            raw = msg.value()
            if raw is None:
                continue
            tweet = json.loads(raw.decode("utf-8"))
            scores = analyzer.polarity_scores(tweet["text"])
            row = {
                "id": tweet["id"],
                "created_at": tweet["created_at"],
                "text": tweet["text"],
                "username": (tweet.get("author") or {}).get("username"),
                "compound": scores["compound"],
                "pos": scores["pos"],
                "neu": scores["neu"],
                "neg": scores["neg"],
                "label": label_of(scores["compound"]),
            }
            cur.execute(insert, tuple(row.values()))
            buffer.append(row)
            if len(buffer) >= BATCH or stored + len(buffer) >= job["count"]:
                df = pd.DataFrame(buffer)
                df["created_at"] = pd.to_datetime(df["created_at"], utc=True)
                out = io.BytesIO()
                df.to_parquet(out, index=False)
                stamp = datetime.now(UTC).strftime("%Y%m%d_%H%M%S_%f")
                key = f"{s3['prefix']}/processed/tweets_{stamp}_{files:06d}.parquet"
                client.put_object(Bucket=s3["bucket"], Key=key, Body=out.getvalue())
                conn.commit()
                files += 1
                stored += len(buffer)
                buffer = []
    finally:
        consumer.close()
        conn.close()
    return stored


if __name__ == "__main__":
    config = json.loads(Path(sys.argv[1]).read_text())
    print(f"stored {main(config)} tweets")
