"""The dashboard's market panels: price beside sentiment and mentions per drill-down coin, the
sentiment index and social dominance table, and the lead-lag panel with its band and verdict.

Figures are pure (`price_figure`, `leadlag_figure`); the panels fetch through `data.connection`
with their own short caches and say in one line when prices are not available (lake mode, no
`price_minute` table yet, database away) instead of breaking the page.
"""

from __future__ import annotations

import time
from typing import Final

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from cryptosent.analysis.leadlag import LeadLag, lead_lag, verdict
from cryptosent.dashboard import campaigns, data, market
from cryptosent.dashboard.charts import SERIES, mean, scored
from cryptosent.dashboard.queries import RANGES, Analyzer, pick_analyzer
from cryptosent.dashboard.snapshot import Snapshot
from cryptosent.errors import CryptosentError

LEADLAG_SECONDS: Final = 60  # the answer moves slowly; one computation a minute for every viewer
INDEX_SECONDS: Final = 10
LEADLAG_HOURS: Final = (6, 24, 72)
LEADLAG_MAX_LAG: Final = 60
_MARGIN: Final = {"l": 10, "r": 10, "t": 36, "b": 10}


# ------------------------------------------------------------------------------------ figures ---
def price_figure(coin: str, buckets: pd.DataFrame, prices: pd.DataFrame, colour: str) -> go.Figure:
    """One coin: close (USD, left axis), mean sentiment (right axis, -1..1) and mentions (faint
    bars along the bottom)."""
    fig = go.Figure()
    if len(buckets):
        volume = buckets["tweets"]
        fig.add_trace(
            go.Bar(x=buckets["bucket"], y=volume, name="mentions", marker_color=colour,
                   opacity=0.25, yaxis="y3")
        )  # fmt: skip
        fig.add_trace(
            go.Scatter(x=buckets["bucket"], y=mean(buckets["compound_sum"], scored(buckets)),
                       name="sentiment", mode="lines", yaxis="y2",
                       line={"color": colour, "width": 2, "dash": "dot"})
        )  # fmt: skip
    if len(prices):
        fig.add_trace(
            go.Scatter(x=prices["bucket"], y=prices["close"], name="price (close)",
                       mode="lines", line={"color": "#0f172a", "width": 2.5})
        )  # fmt: skip
    top = float(buckets["tweets"].max()) if len(buckets) else 1.0
    fig.update_layout(
        title={"text": f"{coin}: price, sentiment and mentions", "x": 0, "font": {"size": 15}},
        height=300, margin=_MARGIN, hovermode="x unified",
        legend={"orientation": "h", "y": -0.2, "x": 0},
        yaxis={"title": {"text": "USD"}},
        yaxis2={"overlaying": "y", "side": "right", "range": [-1, 1], "showgrid": False,
                "title": {"text": "mean compound"}},
        yaxis3={"overlaying": "y", "range": [0, 3 * max(top, 1.0)], "visible": False},
    )  # fmt: skip
    return fig


def leadlag_figure(result: LeadLag) -> go.Figure:
    """Correlation at every lag with the significance band (|r| inside it: no evidence) and the
    best lag marked."""
    s = result.sentiment
    lags = [k for k, _ in s.lags]
    values = [r for _, r in s.lags]
    fig = go.Figure()
    if s.threshold is not None:
        fig.add_trace(
            go.Scatter(x=[*lags, *lags[::-1]],
                       y=[s.threshold] * len(lags) + [-s.threshold] * len(lags),
                       fill="toself", fillcolor="rgba(148,163,184,0.3)", line={"width": 0},
                       name="no-evidence band", hoverinfo="skip")
        )  # fmt: skip
    fig.add_trace(
        go.Scatter(x=lags, y=values, name="sentiment vs return", mode="lines+markers",
                   marker={"size": 3}, line={"color": "#2563eb", "width": 2})
    )  # fmt: skip
    v = result.volume
    if v.lags:
        fig.add_trace(
            go.Scatter(x=[k for k, _ in v.lags], y=[r for _, r in v.lags],
                       name="mentions vs size of move", mode="lines",
                       line={"color": "#f59e0b", "width": 1.5, "dash": "dot"})
        )  # fmt: skip
    if s.best_lag_minutes is not None and s.correlation is not None:
        fig.add_trace(
            go.Scatter(x=[s.best_lag_minutes], y=[s.correlation], mode="markers",
                       name=f"best lag {s.best_lag_minutes:+d} min",
                       error_y={"type": "data", "symmetric": False,
                                "array": [(s.ci_high or s.correlation) - s.correlation],
                                "arrayminus": [s.correlation - (s.ci_low or s.correlation)]},
                       marker={"size": 11, "color": "#dc2626", "symbol": "diamond"})
        )  # fmt: skip
    fig.add_vline(x=0, line={"color": "#94a3b8", "width": 1})
    fig.update_layout(
        title={"text": "Lead-lag: correlation by lag (positive = sentiment first)", "x": 0,
               "font": {"size": 15}},
        height=320, margin=_MARGIN, hovermode="x unified",
        legend={"orientation": "h", "y": -0.25, "x": 0},
        xaxis={"title": {"text": "lag (minutes)"}}, yaxis={"title": {"text": "r"}},
    )  # fmt: skip
    return fig


# ------------------------------------------------------------------------------------- caches ---
def _unavailable() -> str | None:
    if data.settings().dashboard_source == "lake":
        return "Market panels read PostgreSQL (price_minute); the lake view has no prices."
    return None


@st.cache_data(ttl=data.LIVE_TTL, show_spinner=False, max_entries=32)
def fetch_prices(source: str, range_key: str, coins: tuple[str, ...], bucket: int) -> pd.DataFrame:
    """Closes of the chosen coins per bucket of the range."""
    with data.connection() as conn:
        return market.price_buckets(conn, list(coins), RANGES[range_key], bucket)


@st.cache_data(ttl=INDEX_SECONDS, show_spinner=False, max_entries=8)
def fetch_index(
    source: str, granularity: market.Granularity, analyzer: Analyzer, organic: bool, slot: int
) -> pd.DataFrame:
    """The sentiment index and dominance of the last closed minute or hour."""
    with data.connection() as conn:
        return market.index_table(conn, granularity, analyzer, organic=organic)


@st.cache_data(ttl=LEADLAG_SECONDS, show_spinner=False, max_entries=16)
def fetch_leadlag(
    source: str, coin: str, hours: int, analyzer: Analyzer, organic: bool, slot: int
) -> LeadLag:
    """The lead-lag answer for one coin over the last `hours`."""
    with data.connection() as conn:
        window = market.coin_window(conn, coin, hours, analyzer, organic=organic)
    return lead_lag(window.series, LEADLAG_MAX_LAG)


# ------------------------------------------------------------------------------------- panels ---
def prices(snap: Snapshot, analyzer: Analyzer, chosen: list[str]) -> None:
    """Per drill-down coin: price (close) with its sentiment and mentions."""
    problem = _unavailable()
    if problem or not chosen:
        st.caption(problem or "Pick coins above to see their prices.")
        return
    try:
        closes = fetch_prices(data.source_key(), snap.range_key, tuple(chosen), snap.bucket)
    except CryptosentError as exc:
        st.caption(f"Prices unavailable: {exc}")
        return
    buckets = pick_analyzer(snap.coin_buckets, analyzer)
    columns = st.columns(2)
    for i, coin in enumerate(chosen):
        coin_prices = closes[closes["coin"] == coin]
        coin_buckets = buckets[buckets["coin"] == coin]
        figure = price_figure(coin, coin_buckets, coin_prices, SERIES[i % len(SERIES)])
        columns[i % 2].plotly_chart(figure, key=f"price-{coin}")
        if coin_prices.empty:
            columns[i % 2].caption(f"No prices for {coin} in this range.")


def index_table(analyzer: Analyzer) -> None:
    """The sentiment index (0-100 against the coin's own baseline) and social dominance."""
    problem = _unavailable()
    if problem:
        st.caption(problem)
        return
    granularity = st.segmented_control(
        "Sentiment index per", ["hour", "minute"], default="hour", required=True,
        key="index_granularity",
        help="0-100: the coin's last closed hour (or minute) against its own trailing baseline "
        "(20 days of hours, 24 h of minutes); 50 is ordinary. Dominance: its share of all coin "
        "mentions. Formula: docs/market.md.",
    )  # fmt: skip
    try:
        per: market.Granularity = "minute" if granularity == "minute" else "hour"
        table = fetch_index(
            data.source_key(), per, analyzer, campaigns.organic_only(),
            int(time.time() // INDEX_SECONDS),
        )  # fmt: skip
    except CryptosentError as exc:
        st.caption(f"Sentiment index unavailable: {exc}")
        return
    if table.empty:
        st.caption("No coin mentions in the last closed bucket or its baseline.")
        return
    st.dataframe(
        table, hide_index=True, height=300, key="sentiment_index",
        column_config={
            "index": st.column_config.ProgressColumn(
                "sentiment index", min_value=0.0, max_value=100.0, format="%.0f"
            ),
            "dominance": st.column_config.NumberColumn("dominance", format="%.1f %%"),
            "mean": st.column_config.NumberColumn("mean compound", format="%+.3f"),
        },
    )  # fmt: skip


def leadlag(snap: Snapshot, analyzer: Analyzer, chosen: list[str]) -> None:
    """Does sentiment move before price? The lags, the band, the plain-words verdict."""
    st.markdown("#### Does sentiment move before price?")
    problem = _unavailable()
    if problem:
        st.caption(problem)
        return
    coins = list(dict.fromkeys([*chosen, *snap.heatmap_coins]))
    if not coins:
        st.caption("No coins mentioned yet.")
        return
    left, right = st.columns([1, 1])
    coin = left.selectbox("Coin", coins, key="leadlag_coin", width=200)
    hours = right.segmented_control(
        "Over the last (hours)", LEADLAG_HOURS, default=24, required=True, key="leadlag_hours"
    )
    hours = int(hours or 24)
    try:
        result = fetch_leadlag(
            data.source_key(), str(coin), hours, analyzer, campaigns.organic_only(),
            int(time.time() // LEADLAG_SECONDS),
        )  # fmt: skip
    except CryptosentError as exc:
        st.caption(f"Lead-lag unavailable: {exc}")
        return
    if result.reason is not None:
        st.info(f"**{coin}**: {result.reason}.", icon="⏳")
        return
    s = result.sentiment
    text = f"**{coin}: {verdict(s, hours)}**"
    if s.ci_low is not None and s.ci_high is not None:
        text += (
            f" · 95 % interval [{s.ci_low:+.2f}, {s.ci_high:+.2f}] over {result.n_minutes:,}"
            f" minutes, corrected for autocorrelation and {2 * result.max_lag + 1} lags tried"
        )
    st.markdown(text)
    st.plotly_chart(leadlag_figure(result), key="leadlag")
    st.caption(
        "Correlation is not causation: a shared cause (news) can move both. The band assumes "
        "steady behaviour over the window; see docs/market.md."
    )
