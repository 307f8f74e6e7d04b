"""The live dashboard's layout (`cryptosent dashboard` runs it with `streamlit run`).

Layout only: data comes from `data` (pool, caches), figures from `charts`. The live part is one
`st.fragment` re-run every few seconds, so only it redraws: no loop, no whole-page flicker.
Tweet text is untrusted and is only ever shown inside `st.dataframe` cells (plain text).
"""

from __future__ import annotations

import sys
import time
from collections import deque
from datetime import UTC, datetime

import pandas as pd
import streamlit as st

from cryptosent.analysis.coins import COINS
from cryptosent.dashboard import campaigns, charts, data, formatting, history, market_panels
from cryptosent.dashboard.kafka_lag import consumer_lag
from cryptosent.dashboard.queries import ANALYZERS, RANGES, Analyzer, pick_analyzer, pick_totals
from cryptosent.dashboard.snapshot import Snapshot

NAMES = {ticker: coin.name for ticker, coin in COINS.items()}
ALL_COINS = "all coins"
LEADERBOARD_MIN_SHARE = 0.002  # a coin needs 0.2 % of the range's tweets to rank


def sidebar() -> tuple[str, Analyzer, float | None]:
    """Controls: time range, analyzer, live updates; returns (range, analyzer, refresh)."""
    s = data.settings()
    with st.sidebar:
        st.title("cryptosent")
        st.caption("Live sentiment of what people post about crypto.")
        range_key = st.segmented_control(
            "Time range", list(RANGES), default="1 h", required=True, key="range"
        )
        analyzer = st.segmented_control(
            "Analyzer", ANALYZERS, default="learned", required=True, key="analyzer",
            help="learned: the distilled crypto sentiment model (default); vader: VADER 3.3.2",
        )  # fmt: skip
        campaigns.organic_switch()
        live = st.toggle("Live updates", value=True, key="live")
        refresh = st.slider(
            "Refresh every (seconds)", 2, 60, s.dashboard_refresh_seconds,
            key="refresh", disabled=not live,
        )  # fmt: skip
        st.divider()
        st.caption(f"Source: {data.describe_source(s)}")
        st.caption(f"Kafka: {s.kafka_bootstrap} · topic `{s.topic}`")
    return str(range_key), analyzer or "learned", float(refresh) if live else None


def database_banner(problem: str, refresh: float | None) -> None:
    """The database-down banner (the next refresh retries by itself)."""
    retry = f"Retrying every {refresh:.0f} s" if refresh else "Turn live updates on to retry"
    st.error(f"**Data source unavailable.** {retry}; the page recovers by itself.", icon="🔌")
    st.text(problem)


def empty_state() -> None:
    """What to do when nothing is stored yet."""
    st.info("No tweets stored yet. Start the pipeline and this page fills in by itself.", icon="🛰")
    st.code(
        "make demo                                  # everything: stack, generator, processor\n"
        "# or, step by step:\n"
        "cryptosent stack up\n"
        "cryptosent generate --rate 2000/min &      # mock tweets -> Kafka\n"
        "cryptosent process                         # Kafka -> PostgreSQL + lake",
        language="bash",
    )


def kpis(snap: Snapshot, analyzer: Analyzer) -> None:
    """Total, tweets/min now, mean sentiment, % positive / negative, newest tweet age."""
    totals = pick_totals(snap.totals, analyzer)
    tweets = totals["tweets"]
    mean = formatting.mean_compound(totals)
    now_rate, before = snap.rate
    timeline = snap.timeline
    spark = list(timeline["tweets"]) if len(timeline) > 1 else None
    newest = snap.state.newest_tweet
    cols = st.columns(6)
    cols[0].metric("Total tweets", formatting.count(tweets), border=True, chart_data=spark,
                   chart_type="area", help=f"in the last {snap.range_key}")  # fmt: skip
    cols[1].metric("Tweets / min now", formatting.count(now_rate), border=True,
                   delta=formatting.count(now_rate - before) if before else None,
                   help="created in the last 60 s (delta: vs the minute before)")  # fmt: skip
    cols[2].metric("Mean sentiment", "—" if mean is None else f"{mean:+.3f}", border=True,
                   delta=formatting.mood(mean) or None,
                   delta_color="normal" if (mean or 0) >= 0.05 else
                   "inverse" if (mean or 0) <= -0.05 else "off",
                   delta_arrow="off")  # fmt: skip
    cols[3].metric("Positive", formatting.share(totals["positive"], tweets), border=True)
    cols[4].metric("Negative", formatting.share(totals["negative"], tweets), border=True)
    age = (snap.state.now - newest).total_seconds() if newest else None
    cols[5].metric(
        "Newest tweet", formatting.age(age), border=True, help="age of the newest stored tweet"
    )


def overview(snap: Snapshot, analyzer: Analyzer) -> None:
    """Seed panels: timeline, pie, top mentions, leaderboard, heatmap."""
    totals = pick_totals(snap.totals, analyzer)
    timeline = pick_analyzer(snap.timeline, analyzer)
    coins = pick_analyzer(snap.coin_totals, analyzer)
    buckets = pick_analyzer(snap.coin_buckets, analyzer)
    left, right = st.columns([2.2, 1])
    left.plotly_chart(charts.sentiment_timeline(timeline), key="timeline")
    right.plotly_chart(
        charts.sentiment_pie(totals["positive"], totals["neutral"], totals["negative"]), key="pie"
    )
    left, right = st.columns(2)
    left.plotly_chart(charts.top_mentions(coins, NAMES), key="mentions")
    min_tweets = max(5, int(totals["tweets"] * LEADERBOARD_MIN_SHARE))
    right.plotly_chart(charts.leaderboard(coins, min_tweets), key="leaderboard")
    st.plotly_chart(charts.heatmap(buckets, snap.heatmap_coins), key="heatmap")


def drilldown(snap: Snapshot, analyzer: Analyzer, chosen: list[str]) -> None:
    """Per-coin sentiment line over volume bars, coins picked by the viewer."""
    buckets = pick_analyzer(snap.coin_buckets, analyzer)
    st.plotly_chart(charts.coin_drilldown(buckets, chosen), key="drilldown")


def words_and_alerts(snap: Snapshot, analyzer: Analyzer) -> None:
    """The word cloud beside the alerts panel."""
    left, right = st.columns([1.4, 1])
    with left:
        st.markdown("**Word cloud** · newest 1,000 tweets, coloured by sentiment")
        png = data.fetch_wordcloud(
            data.source_key(), snap.range_key, analyzer, data.wordcloud_slot()
        )
        if png:
            st.image(png, width="stretch")
        else:
            st.caption("No words yet.")
    with right:
        st.markdown("**Alerts** · volume surges and sentiment swings")
        if snap.alerts.empty:
            st.caption("No alerts in this range.")
        else:
            st.dataframe(
                snap.alerts[["created_at", "coin", "kind", "value", "baseline", "message"]],
                hide_index=True, height=360, key="alerts",
                column_config={
                    "created_at": st.column_config.DatetimeColumn("raised", format="HH:mm:ss"),
                    "value": st.column_config.NumberColumn(format="%.2f"),
                    "baseline": st.column_config.NumberColumn(format="%.2f"),
                },
            )  # fmt: skip


def latest_table(snap: Snapshot, analyzer: Analyzer) -> None:
    """The newest tweets (text shown as plain text in a grid, never as HTML or markdown)."""
    tweets = pick_analyzer(snap.latest, analyzer)
    if tweets.empty:
        st.caption("No tweets in this range.")
        return
    shown = tweets.assign(coins=tweets["coins"].map(lambda c: " ".join(c) if c is not None else ""))
    columns = ["created_at", "author_username", "text", "coins", "compound", "label"]
    if analyzer == "learned" and "confidence" in shown.columns:
        shown = shown.assign(why=data.explanations(shown["text"].tolist()))
        columns += ["confidence", "why"]
    st.dataframe(
        shown[columns],
        hide_index=True, height=380, key="latest",
        column_config={
            "created_at": st.column_config.DatetimeColumn("time (UTC)", format="HH:mm:ss"),
            "author_username": st.column_config.TextColumn("author"),
            "text": st.column_config.TextColumn("text", width="large"),
            "compound": st.column_config.ProgressColumn(
                "sentiment", min_value=-1.0, max_value=1.0, format="%+.2f"
            ),
            "confidence": st.column_config.NumberColumn("confidence", format="%.2f"),
            "why": st.column_config.TextColumn("why (the phrases that decided)"),
        },
    )  # fmt: skip


def pipeline_health(snap: Snapshot) -> None:
    """Processing rate, consumer lag, freshness, throughput per minute."""
    state = snap.state
    stored = sum(state.offsets.values())
    samples: deque[tuple[float, int]] = st.session_state.setdefault("offsets", deque(maxlen=30))
    if stored and (
        not samples or samples[-1][1] != stored or time.monotonic() - samples[-1][0] > 5
    ):
        samples.append((time.monotonic(), stored))
    while len(samples) > 2 and samples[-1][0] - samples[0][0] > 60:
        samples.popleft()
    rate = None
    if len(samples) >= 2 and samples[-1][0] > samples[0][0]:
        rate = (samples[-1][1] - samples[0][1]) / (samples[-1][0] - samples[0][0])
    positions = data.fetch_positions(data.source_key(), data.kafka_slot())
    lag = consumer_lag(positions, state.offsets) if positions else None
    cols = st.columns(4)
    cols[0].metric("Processed", "—" if rate is None else f"{rate:,.0f} msg/s", border=True,
                   help="offsets stored in PostgreSQL per second, last minute")  # fmt: skip
    cols[1].metric(
        "Consumer lag",
        "Kafka unreachable" if lag is None else f"{sum(lag.values()):,} msgs",
        border=True,
        help="Kafka high watermarks minus the offsets stored with the rows",
    )
    newest, last = state.newest_tweet, state.last_write
    newest_age = (state.now - newest).total_seconds() if newest else None
    last_age = (state.now - last).total_seconds() if last else None
    cols[2].metric("Newest stored tweet", formatting.age(newest_age) + " old", border=True)
    cols[3].metric("Last processor write", formatting.age(last_age) + " ago", border=True)
    left, right = st.columns([2.2, 1])
    left.plotly_chart(charts.throughput(snap.throughput), key="throughput")
    if positions and lag is not None:
        table = pd.DataFrame(
            {
                "partition": list(positions.high),
                "high watermark": list(positions.high.values()),
                "stored": [state.offsets.get(p, 0) for p in positions.high],
                "lag": [lag[p] for p in positions.high],
            }
        )
        right.dataframe(table, hide_index=True, key="partitions")


def live(range_key: str, analyzer: Analyzer, refresh: float | None) -> None:
    """Everything that moves: fetched and drawn again at every refresh."""
    chosen: list[str] = st.session_state.get("drill") or []
    tweets_coin = st.session_state.get("tweets_coin", ALL_COINS)
    problem = None
    snap: Snapshot | None
    try:
        snap = data.fetch_snapshot(
            data.source_key(),
            range_key,
            tuple(chosen),
            None if tweets_coin == ALL_COINS else tweets_coin,
        )
        st.session_state["last_snapshot"] = snap
    except data.Unavailable as exc:
        problem = str(exc)
        snap = st.session_state.get("last_snapshot")
    stamp = datetime.now(UTC).strftime("%H:%M:%S UTC")
    every = f"live, every {refresh:.0f} s" if refresh else "paused"
    st.caption(f"Updated {stamp} · {every} · {snap.range_key if snap else range_key} window")
    if problem:
        database_banner(problem, refresh)
        if snap is None:
            return
        st.warning("Showing the last data received before the source went away.", icon="⏸")
    assert snap is not None
    if snap.empty:
        empty_state()
        return
    every_post, snap = snap, campaigns.view(snap)
    kpis(snap, analyzer)
    overview(snap, analyzer)
    market_panels.index_table(analyzer)
    st.subheader("Coin drill-down")
    if "drill" not in st.session_state:
        st.session_state["drill"] = list(snap.heatmap_coins[:3])
    picked = st.multiselect(
        "Coins", list(dict.fromkeys([*snap.heatmap_coins, *NAMES])), key="drill",
        format_func=lambda t: f"{t} · {NAMES.get(t, t)}", max_selections=6,
    )  # fmt: skip
    drilldown(snap, analyzer, [c for c in picked if c in set(snap.coin_buckets["coin"])])
    market_panels.prices(snap, analyzer, [c for c in picked if c in NAMES])
    market_panels.leadlag(snap, analyzer, picked)
    words_and_alerts(snap, analyzer)
    st.subheader("Bots and campaigns")
    campaigns.panels(every_post)
    st.subheader("Latest tweets")
    st.selectbox("Mentioning", [ALL_COINS, *NAMES], key="tweets_coin", width=240)
    latest_table(snap, analyzer)
    st.subheader("Pipeline health")
    pipeline_health(snap)


def main() -> None:
    """Page setup, sidebar, then the live fragment."""
    data.use_command_line(sys.argv[1:])
    st.set_page_config(
        page_title="cryptosent · live crypto sentiment", page_icon="📈", layout="wide"
    )
    range_key, analyzer, refresh = sidebar()
    st.fragment(run_every=refresh)(live)(range_key, analyzer, refresh)
    history.panel(analyzer)


main()
