"""`cryptosent leadlag` on a real PostgreSQL: one coin whose sentiment leads its price by 12
minutes, one whose sentiment is unrelated, and one with too little data."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

import orjson
import pytest
from market_support import now_minute, synthetic_coin, write_coin

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def leadlag(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, CRYPTOSENT_DATABASE_URL=url)
    return subprocess.run(
        [sys.executable, "-m", "cryptosent", "leadlag", *args],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip


def test_leadlag_finds_the_lead_and_not_a_relation_that_is_not_there(database_url: str) -> None:
    until = now_minute(database_url)
    # a minute boundary between writing and asking would shift the window by one minute only
    write_coin(database_url, "BTC", until, *synthetic_coin(1440, seed=7, lead=12))
    write_coin(database_url, "ETH", until, *synthetic_coin(1440, seed=8, lead=None))
    write_coin(database_url, "SOL", until, *synthetic_coin(100, seed=9, lead=12))

    done = leadlag(database_url, "--coin", "BTC", "--hours", "24", "--max-lag", "60", "--json")
    assert done.returncode == 0, done.stderr
    btc = orjson.loads(done.stdout)
    assert btc["coin"] == "BTC" and btc["hours"] == 24
    assert abs(btc["best_lag_minutes"] - 12) <= 2
    assert btc["significant"] is True
    assert 0 < btc["ci_low"] < btc["correlation"] < btc["ci_high"]
    assert btc["n_minutes"] in (1438, 1439)  # the first price minute gives no return
    assert [lag["lag_minutes"] for lag in btc["lags"]] == list(range(-60, 61))
    assert btc["reason"] is None
    assert btc["verdict"].startswith(f"sentiment led price by ~{btc['best_lag_minutes']} min")

    # market_support writes every post as organic too: the organic view gives the same answer
    done = leadlag(database_url, "--coin", "BTC", "--organic", "--json")
    assert done.returncode == 0, done.stderr
    organic = orjson.loads(done.stdout)
    assert organic["organic"] is True
    assert organic["best_lag_minutes"] == btc["best_lag_minutes"]
    # equal unless a minute passed between the two commands (the window moves by one minute)
    assert organic["correlation"] == pytest.approx(btc["correlation"], abs=0.01)

    done = leadlag(database_url, "--coin", "eth", "--json")
    assert done.returncode == 0, done.stderr
    eth = orjson.loads(done.stdout)
    assert eth["coin"] == "ETH"
    assert eth["significant"] is False
    assert eth["ci_low"] < 0 < eth["ci_high"]
    assert eth["verdict"] == "no significant relation over the last 24 h"

    done = leadlag(database_url, "--coin", "SOL", "--json")
    assert done.returncode == 2
    sol = orjson.loads(done.stdout)
    assert sol["significant"] is False and sol["best_lag_minutes"] is None
    assert sol["reason"] == (
        "too little data: 99 minutes with prices, 240 needed for lags up to 60 min"
    )

    done = leadlag(database_url, "--coin", "SOL")
    assert done.returncode == 2
    assert done.stdout.strip() == (
        "SOL: too little data: 99 minutes with prices, 240 needed for lags up to 60 min"
    )
    done = leadlag(database_url, "--coin", "BTC")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("BTC: sentiment led price by ~")
    assert timedelta(0) <= now_minute(database_url) - until <= timedelta(minutes=2)


def test_leadlag_without_a_database_is_one_line() -> None:
    down = "postgresql://cryptosent:x@127.0.0.1:1/nothing"
    done = leadlag(down, "--coin", "BTC")
    assert done.returncode == 1
    assert done.stderr.startswith("error: PostgreSQL unreachable at ")
    assert "Traceback" not in done.stderr


def test_thirty_days_of_minutes_answer_in_under_a_second(database_url: str) -> None:
    """The benchmark of docs/benchmarks.md: 43,200 minutes of one coin, read and analysed."""
    import time

    import psycopg

    from cryptosent.analysis.leadlag import lead_lag
    from cryptosent.dashboard.market import coin_window

    until = now_minute(database_url)
    write_coin(database_url, "BTC", until, *synthetic_coin(30 * 1440, seed=11, lead=12))
    timings = []
    with psycopg.connect(database_url) as conn:
        for _ in range(3):
            started = time.perf_counter()
            result = lead_lag(coin_window(conn, "BTC", 30 * 24).series, 60)
            timings.append(time.perf_counter() - started)
    assert result.n_minutes >= 43_198
    assert result.sentiment.best_lag_minutes == 12 and result.sentiment.significant
    print(f"leadlag over 30 days: best {min(timings):.3f} s, worst {max(timings):.3f} s")
    started = time.perf_counter()
    done = leadlag(database_url, "--coin", "BTC", "--hours", "720", "--json")
    wall = time.perf_counter() - started
    assert done.returncode == 0, done.stderr
    assert orjson.loads(done.stdout)["best_lag_minutes"] == 12
    print(f"`cryptosent leadlag --hours 720 --json`, whole process: {wall:.3f} s")
    assert min(timings) < 1.0
