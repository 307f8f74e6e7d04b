"""Synthetic market data written straight into a test database: `coin_minute` rows (sentiment and
mentions) and `price_minute` rows (closes) on the minutes before now, with a known lead."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import psycopg

# price_minute as the brief states it; the processor's migration may add bookkeeping columns
PRICE_MINUTE = """create table if not exists price_minute (
    coin text not null, minute timestamptz not null, open double precision not null,
    high double precision not null, low double precision not null,
    close double precision not null, volume double precision not null, trades bigint not null,
    primary key (coin, minute))"""


def synthetic_coin(
    minutes: int, seed: int, lead: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean sentiment, mentions, close) per minute: AR(1) sentiment; returns follow the
    sentiment of `lead` minutes before (None: unrelated)."""
    rng = np.random.default_rng(seed)
    shocks = rng.normal(0, 0.1, minutes)
    mood = np.zeros(minutes)
    for t in range(1, minutes):
        mood[t] = 0.8 * mood[t - 1] + shocks[t]
    mood = np.clip(mood, -0.95, 0.95)
    moves = rng.normal(0, 0.001, minutes)
    if lead is not None:
        moves[lead:] += 0.004 * mood[: minutes - lead]
    close = 100 * np.exp(np.cumsum(moves))
    return mood, rng.poisson(20, minutes).astype(float) + 1, close


def now_minute(url: str) -> datetime:
    """The database's current minute (the first one the command leaves out)."""
    with psycopg.connect(url) as conn:
        row = conn.execute("select date_trunc('minute', now())").fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


def write_coin(
    url: str,
    coin: str,
    until: datetime,
    mood: np.ndarray,
    mentions: np.ndarray,
    close: np.ndarray,
    all_row: bool = False,
) -> None:
    """The coin's rows on the len(mood) minutes before `until` (and the '*' rows if asked)."""
    first = until - timedelta(minutes=len(mood))
    minutes = [first + timedelta(minutes=i) for i in range(len(mood))]
    counts = [int(n) for n in mentions]
    coins = [coin] * len(minutes) + (["*"] * len(minutes) if all_row else [])
    times = minutes * (2 if all_row else 1)
    tweets = counts * (2 if all_row else 1)
    sums = [float(m) * n for m, n in zip(mood, counts, strict=True)] * (2 if all_row else 1)
    with psycopg.connect(url) as conn:
        conn.execute(PRICE_MINUTE)
        required = conn.execute(
            "select column_name, data_type from information_schema.columns"
            " where table_name = 'price_minute' and is_nullable = 'NO' and column_default is null"
        ).fetchall()
        # every post scored positive, none spam: the organic measures (if any) equal the plain
        present = {
            name for (name,) in conn.execute(
                "select column_name from information_schema.columns"
                " where table_name = 'coin_minute'"
            ).fetchall()
        }  # fmt: skip
        plain = {
            "tweets": "n", "positive": "n", "neutral": "0", "negative": "0",
            "compound_sum": "s", "vader_positive": "n", "vader_neutral": "0",
            "vader_negative": "0", "vader_compound_sum": "0",
        }  # fmt: skip
        values = {**plain, **{f"organic_{k}": v for k, v in plain.items()}}
        columns = [name for name in values if name in present]
        conn.execute(
            f"insert into coin_minute (coin, minute, {', '.join(columns)})"
            f" select c, m, {', '.join(values[name] for name in columns)}"
            " from unnest(%s::text[], %s::timestamptz[], %s::bigint[], %s::float8[])"
            " as r(c, m, n, s)".encode(),
            [coins, times, tweets, sums],
        )
        with conn.cursor() as cur:
            known = {"coin", "minute", "open", "high", "low", "close", "volume", "trades"}
            extra = [(name, kind) for name, kind in required if name not in known]
            columns = ", ".join([*sorted(known), *(name for name, _ in extra)])
            rows = []
            for minute, price in zip(minutes, close, strict=True):
                values = {
                    "coin": coin, "minute": minute, "open": float(price), "high": float(price),
                    "low": float(price), "close": float(price), "volume": 1.0, "trades": 1,
                }  # fmt: skip
                row = [values[name] for name in sorted(known)]
                row += [minute if kind.startswith("timestamp") else 0 for _, kind in extra]
                rows.append(row)
            with cur.copy(f"copy price_minute ({columns}) from stdin".encode()) as copy:
                for row in rows:
                    copy.write_row(row)
