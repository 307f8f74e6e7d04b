"""Plotly figures for the dashboard: DataFrames in (one analyzer's columns), figures out, no I/O."""

from __future__ import annotations

from typing import Final

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

POSITIVE: Final = "#22c55e"
NEUTRAL: Final = "#94a3b8"
NEGATIVE: Final = "#ef4444"
LABEL_COLOURS: Final = {"positive": POSITIVE, "neutral": NEUTRAL, "negative": NEGATIVE}
SERIES: Final = ("#f7931a", "#627eea", "#14f195", "#e84142", "#c2a633", "#23292f", "#8247e5")
_MARGIN: Final = {"l": 10, "r": 10, "t": 36, "b": 10}


def _layout(fig: go.Figure, title: str, height: int = 320) -> go.Figure:
    fig.update_layout(
        title={"text": title, "x": 0, "font": {"size": 15}},
        height=height,
        margin=_MARGIN,
        legend={"orientation": "h", "y": -0.15, "x": 0},
        hovermode="x unified",
    )
    return fig


def mean(sums: pd.Series, counts: pd.Series) -> pd.Series:
    """Mean compound per row, NaN where there were no tweets."""
    return sums / counts.where(counts > 0)


def scored(frame: pd.DataFrame) -> pd.Series:
    """Tweets that have a label: ``unscored`` posts (languages the learned analyzer was not
    trained on) are in `tweets` but in no label count, and stay out of every mean."""
    if {"positive", "neutral", "negative"} <= set(frame.columns):
        return frame["positive"] + frame["neutral"] + frame["negative"]
    return frame["tweets"]


def sentiment_pie(positive: float, neutral: float, negative: float) -> go.Figure:
    """Share of tweets per label, as a donut."""
    fig = go.Figure(
        go.Pie(
            labels=["positive", "neutral", "negative"],
            values=[positive, neutral, negative],
            marker={"colors": [POSITIVE, NEUTRAL, NEGATIVE]},
            hole=0.55,
            sort=False,
            textinfo="percent",
        )
    )
    _layout(fig, "Sentiment distribution")
    fig.update_layout(hovermode="closest", legend={"y": -0.05})
    return fig


def sentiment_timeline(frame: pd.DataFrame) -> go.Figure:
    """Tweets per bucket stacked by label, with the mean compound on a second axis."""
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    for label, colour in LABEL_COLOURS.items():
        fig.add_trace(
            go.Bar(x=frame["bucket"], y=frame[label], name=label, marker_color=colour, opacity=0.8),
            secondary_y=False,
        )
    fig.add_trace(
        go.Scatter(
            x=frame["bucket"], y=mean(frame["compound_sum"], scored(frame)),
            name="mean sentiment", mode="lines", line={"color": "#facc15", "width": 2.5},
        ),
        secondary_y=True,
    )  # fmt: skip
    fig.update_layout(barmode="stack", bargap=0.1)
    fig.update_yaxes(title_text="tweets", secondary_y=False)
    fig.update_yaxes(title_text="mean compound", range=[-1, 1], secondary_y=True, showgrid=False)
    return _layout(fig, "Sentiment over time")


def top_mentions(coins: pd.DataFrame, names: dict[str, str], n: int = 12) -> go.Figure:
    """The most mentioned coins, bars split by label."""
    top = coins.head(n).iloc[::-1]
    labels = [f"{c} · {names.get(c, c)}" for c in top["coin"]]
    fig = go.Figure()
    for label, colour in LABEL_COLOURS.items():
        fig.add_trace(
            go.Bar(y=labels, x=top[label], name=label, orientation="h", marker_color=colour)
        )
    fig.update_layout(barmode="stack", hovermode="y unified")
    return _layout(fig, "Top crypto mentions", height=380)


def leaderboard(coins: pd.DataFrame, min_tweets: int, n: int = 6) -> go.Figure:
    """Most bullish and most bearish coins (mean compound, coins with at least `min_tweets`)."""
    ranked = coins[coins["tweets"] >= min_tweets].copy()
    ranked["mean"] = mean(ranked["compound_sum"], ranked["tweets"])
    ranked["prev"] = mean(ranked["prev_compound_sum"], ranked["prev_tweets"])
    ranked = ranked.sort_values("mean", ascending=False)
    shown = pd.concat([ranked.head(n), ranked.tail(n)]).drop_duplicates("coin")
    shown = shown.sort_values("mean")
    change = (shown["mean"] - shown["prev"]).map(lambda d: "" if pd.isna(d) else f" ({d:+.2f})")
    fig = go.Figure(
        go.Bar(
            y=shown["coin"], x=shown["mean"], orientation="h",
            marker_color=[POSITIVE if v >= 0 else NEGATIVE for v in shown["mean"]],
            text=[f"{v:+.2f}{c}" for v, c in zip(shown["mean"], change, strict=True)],
            textposition="outside",
            customdata=shown["tweets"],
            hovertemplate="%{y}: %{x:+.3f} over %{customdata} tweets<extra></extra>",
        )
    )  # fmt: skip
    fig.update_xaxes(range=[-1, 1], zeroline=True, title_text="mean compound (change vs before)")
    fig.update_layout(hovermode="closest")
    return _layout(fig, "Bull / bear leaderboard", height=380)


def heatmap(buckets: pd.DataFrame, coins: list[str]) -> go.Figure:
    """Mean compound per coin and time bucket (red to green), coins in the given order."""
    frame = buckets[buckets["coin"].isin(coins)].copy()
    frame["mean"] = mean(frame["compound_sum"], scored(frame))
    grid = frame.pivot_table(index="coin", columns="bucket", values="mean", aggfunc="first")
    grid = grid.reindex([c for c in coins[::-1] if c in grid.index])
    volume = frame.pivot_table(index="coin", columns="bucket", values="tweets", aggfunc="first")
    volume = volume.reindex(grid.index).reindex(columns=grid.columns)
    fig = go.Figure(
        go.Heatmap(
            z=grid.to_numpy(), x=list(grid.columns), y=list(grid.index),
            customdata=volume.to_numpy(), colorscale="RdYlGn", zmid=0, zmin=-0.6, zmax=0.6,
            colorbar={"title": {"text": "mean"}, "thickness": 12},
            hovertemplate="%{y} %{x}<br>mean %{z:+.3f} over %{customdata} tweets<extra></extra>",
            xgap=1, ygap=1,
        )
    )  # fmt: skip
    fig.update_layout(hovermode="closest")
    return _layout(fig, "Sentiment heatmap: coin × time", height=max(260, 24 * len(grid) + 90))


def coin_drilldown(buckets: pd.DataFrame, coins: list[str]) -> go.Figure:
    """Per chosen coin: mean compound as a line over its tweet volume as bars."""
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    for i, coin in enumerate(coins):
        rows = buckets[buckets["coin"] == coin]
        colour = SERIES[i % len(SERIES)]
        fig.add_trace(
            go.Bar(x=rows["bucket"], y=rows["tweets"], name=f"{coin} tweets",
                   marker_color=colour, opacity=0.3),
            secondary_y=True,
        )  # fmt: skip
        fig.add_trace(
            go.Scatter(x=rows["bucket"], y=mean(rows["compound_sum"], scored(rows)),
                       name=f"{coin} sentiment", mode="lines+markers",
                       line={"color": colour, "width": 2.5}, marker={"size": 4}),
            secondary_y=False,
        )  # fmt: skip
    fig.update_layout(barmode="group", bargap=0.15)
    fig.update_yaxes(title_text="mean compound", range=[-1, 1], secondary_y=False)
    fig.update_yaxes(title_text="tweets", secondary_y=True, showgrid=False)
    return _layout(fig, "Coin drill-down: sentiment and volume", height=360)


def throughput(frame: pd.DataFrame) -> go.Figure:
    """Stored tweets per minute (by tweet time) over the last half hour."""
    fig = go.Figure(go.Bar(x=frame["bucket"], y=frame["tweets"], marker_color="#60a5fa"))
    fig.update_yaxes(title_text="tweets / min")
    return _layout(fig, "Throughput: tweets per minute (last 30 min)", height=260)
