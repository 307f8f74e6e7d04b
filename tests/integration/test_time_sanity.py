"""Time sanity end to end: posts dated in 2999 sent through Kafka land in the DLQ with the reason
`created_at in the future`; an archive post (1600) is stored; one dated 5 minutes ahead (inside
the margin) is stored, and the dashboard's queries, as the read-only role runs them on
PostgreSQL, show only what lies between the window's start and now."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from conftest import Pipeline

from cryptosent.dashboard import queries
from cryptosent.dashboard.snapshot import load_snapshot

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

M = timedelta(minutes=1)


def dead_letters(p: Pipeline) -> list[tuple[str, dict[str, str]]]:
    """(tweet id, headers) of every dead letter, read with kcat."""
    out = subprocess.run(
        ["kcat", "-b", p.settings.kafka_bootstrap, "-C", "-t", f"{p.topic}.dlq",
         "-o", "beginning", "-e", "-q", "-J"],
        capture_output=True, timeout=60, check=True, text=True,
    )  # fmt: skip
    found = []
    for line in out.stdout.splitlines():
        record = json.loads(line)
        headers = dict(zip(record["headers"][::2], record["headers"][1::2], strict=True))
        found.append((json.loads(record["payload"])["id"], headers))
    return sorted(found)


def test_posts_dated_in_2999_are_dead_lettered_and_the_dashboard_stays_in_the_present(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    p = pipeline
    now = datetime.now(UTC)
    posts = [
        ("recent", now - 3 * M, "$BTC looking strong"),
        ("earlier", now - 20 * M, "$ETH is dumping"),
        ("soon", now + 5 * M, "$BTC posted by a fast clock"),
        ("archive", datetime(1600, 1, 1, tzinfo=UTC), "$BTC from an old archive"),
        *[(f"future-{n}", datetime(2999, 1, 1 + n, tzinfo=UTC), "$BTC in 2999") for n in range(3)],
    ]  # fmt: skip
    lines = [
        json.dumps({"id": i, "text": text, "created_at": when.isoformat().replace("+00:00", "Z")})
        for i, when, text in posts
    ]
    path = tmp_path / "posts.jsonl"
    path.write_text("\n".join(lines) + "\n")
    sent = p.cli("replay", str(path))
    assert sent.returncode == 0, sent.stderr
    run = p.cli("process", "--until-idle")
    assert run.returncode == 0, run.stderr
    assert "3 dead-lettered" in run.stdout

    dead = dead_letters(p)
    assert [tweet_id for tweet_id, _h in dead] == ["future-0", "future-1", "future-2"]
    for _id, headers in dead:
        assert headers["error"].startswith("created_at in the future ("), headers
    stored = {str(i) for (i,) in p.query("select id from tweets")}
    assert stored == {"recent", "earlier", "soon", "archive"}
    assert p.coin_minute_mismatches() == 0

    reader = p.settings.dashboard_dsn().rsplit("/", 1)[0] + "/" + p.database_url.rsplit("/", 1)[1]
    with psycopg.connect(reader, autocommit=True, options=queries.SESSION_OPTIONS) as conn:
        expected = {"15 min": 1, "1 h": 2, "24 h": 2, "7 d": 2, "all": 2}
        for range_key, window in queries.RANGES.items():
            assert queries.totals(conn, window)["tweets"] == expected[range_key], range_key
            bucket = queries.bucket_seconds(window)
            series = queries.timeline(conn, window, bucket)
            assert series["tweets"].sum() == expected[range_key], range_key
            texts = queries.latest_tweets(conn, window, 50)["text"].tolist()
            assert "$BTC posted by a fast clock" not in texts
        snap = load_snapshot(conn, "all", group=f"group-{p.topic}", topic=p.topic)
        assert snap.totals["tweets"] == 2
        assert max(snap.timeline["bucket"]) <= datetime.now(UTC)
        assert snap.state.newest_tweet is not None
        assert snap.state.newest_tweet <= snap.state.now
        assert snap.latest["text"].tolist() == ["$BTC looking strong", "$ETH is dumping"]
