"""The peers stage of `cryptosent bench`: cryptosent, the seed-style script and the Quix Streams
job drain one topic of 3,000 tweets, and each stores exactly those tweets, in its table and in
its Parquet objects (read back here with psycopg, boto3 and pyarrow), so the baselines do the
same job; the stage's JSON has the rates, ratios and cryptosent's CPU cost."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import psycopg
import pyarrow.parquet as pq
import pytest
from psycopg import sql

from cryptosent.bench.peers.jobs import s3_client
from cryptosent.bench.peers.stage import Stored, measure_peers
from cryptosent.bench.run import verdicts, write_json
from cryptosent.config import Settings

COUNT = 3_000


def _table(stored: Stored) -> dict[str, tuple[float, str]]:
    """id -> (compound, label) of every row in the job's table (raises on a duplicate id)."""
    query = sql.SQL("select id, compound, label from {}").format(sql.Identifier(stored.table))
    with psycopg.connect(stored.database_url) as conn:
        rows = conn.execute(query).fetchall()
    by_id = {str(r[0]): (float(r[1]), str(r[2])) for r in rows}
    assert len(by_id) == len(rows), f"{stored.name}: duplicate ids in its table"
    return by_id


def _parquet_ids(settings: Settings, stored: Stored) -> list[str]:
    """The ids in every Parquet object under the job's prefix."""
    client = s3_client(settings)
    listing = client.list_objects_v2(Bucket=stored.bucket, Prefix=stored.prefix + "/")
    ids: list[str] = []
    for item in listing.get("Contents", []):
        body = client.get_object(Bucket=stored.bucket, Key=item["Key"])["Body"].read()
        if item["Key"].endswith(".parquet"):
            ids += pq.read_table(io.BytesIO(body), columns=["id"]).column("id").to_pylist()
    return ids


@pytest.mark.timeout(300)
def test_peers_store_every_tweet_and_report_ratios(settings: Settings, tmp_path: Path) -> None:
    seen: dict[str, dict[str, tuple[float, str]]] = {}
    lake_ids: dict[str, list[str]] = {}

    def inspect(stored: list[Stored]) -> None:
        for job in stored:
            seen[job.name] = _table(job)
            lake_ids[job.name] = _parquet_ids(settings, job)

    result = measure_peers(settings, COUNT, inspect=inspect)

    assert sorted(seen) == ["cryptosent", "quix", "seed"]
    ids = set(seen["cryptosent"])
    assert len(ids) == COUNT
    for name in ("seed", "quix"):
        assert len(seen[name]) == COUNT, name
        assert set(seen[name]) == ids, name
    for name in ("cryptosent", "seed", "quix"):
        assert len(lake_ids[name]) == COUNT, name
        assert set(lake_ids[name]) == ids, name
    # the two peers score alike: the same vaderSentiment, the same thresholds
    assert seen["seed"] == seen["quix"]
    # the seed writes one Parquet object per 100 tweets
    assert result["peers_seed_parquet_objects"] == COUNT // 100

    path = tmp_path / "bench.json"
    write_json(result, path)
    figures = json.loads(path.read_text())
    assert figures["peers_count"] == COUNT
    for key in (
        "peers_cryptosent_tweets_per_s", "peers_seed_tweets_per_s", "peers_quix_tweets_per_s",
        "peers_ratio_vs_seed", "peers_ratio_vs_quix", "peers_cryptosent_cpu_s_per_1000",
        "peers_cpu_ratio_vs_seed", "peers_cpu_ratio_vs_quix",
    ):  # fmt: skip
        assert isinstance(figures[key], float), key
    # the peers commit many times even at 3,000 tweets; cryptosent may commit them all at once
    # (one batch), which leaves its sustained rate and the ratios undefined (NaN) at this size
    assert (
        math.isfinite(figures["peers_seed_tweets_per_s"]) and figures["peers_seed_tweets_per_s"] > 0
    )
    assert figures["peers_cryptosent_cpu_s_per_1000_raw"] > 0
    assert figures["peers_versions"]["quixstreams"] == "3.28.1"
    assert {"peers_ratio_vs_seed", "peers_ratio_vs_quix"} <= set(verdicts(figures))
