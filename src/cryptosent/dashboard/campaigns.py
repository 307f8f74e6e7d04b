"""Bots and campaigns on the dashboard: the "organic only" switch, the per-coin bot share with
the influence-weighted mean, and the active campaigns (docs/campaigns.md, docs/dashboard.md).

The switch needs no query: the aggregates carry every measure for all posts and for organic
posts (`organic_*`), and `organic_view` puts the organic ones under the plain names the charts
read. The campaigns panel reads the campaign posts of the range from `tweets` (PostgreSQL, or
the lake's `tweets` in DuckDB); their texts are untrusted and only shown in grid cells.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Final

import pandas as pd
import streamlit as st

from cryptosent.dashboard import data, queries
from cryptosent.dashboard.snapshot import Snapshot
from cryptosent.errors import CryptosentError

ORGANIC_KEY: Final = "organic"
"""The session-state key of the switch (on by default)."""
ORGANIC_PREFIX: Final = "organic_"
BOT_SHARE_COINS: Final = 12
CAMPAIGN_ROWS: Final = 20
CAMPAIGN_POSTS: Final = 20_000  # newest campaign posts of the range the panel summarises

_CAMPAIGN_POSTS = """
select campaign_id, created_at, id, coalesce(author_id, author_username, id) as account,
       text, coins
from tweets
where campaign_id is not null and created_at >= now() - %(window)s and created_at <= now()
order by created_at desc limit %(limit)s
"""


# ------------------------------------------------------------------------- the organic switch ---
def organic_switch() -> bool:
    """The sidebar's switch; True when only organic posts (not spam) are counted."""
    on = st.toggle(
        "Organic only", value=True, key=ORGANIC_KEY,
        help="Count only organic posts: leave out spam, bots and coordinated campaigns "
        "(docs/campaigns.md). Off: every post.",
    )  # fmt: skip
    return bool(on)


def organic_only() -> bool:
    """The switch's state (on until the viewer turns it off)."""
    return bool(st.session_state.get(ORGANIC_KEY, True))


def organic_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with the organic measures under the plain names (all-post ones dropped)."""
    organic = [c for c in frame.columns if c.startswith(ORGANIC_PREFIX)]
    if not organic:
        return frame
    plain = {c: c[len(ORGANIC_PREFIX) :] for c in organic}
    return frame.drop(columns=[p for p in plain.values() if p in frame.columns]).rename(
        columns=plain
    )


def organic_totals(row: Mapping[str, float]) -> dict[str, float]:
    """Totals with the organic measures under the plain names."""
    out = {k: v for k, v in row.items() if not k.startswith(ORGANIC_PREFIX)}
    out.update(
        {k[len(ORGANIC_PREFIX) :]: v for k, v in row.items() if k.startswith(ORGANIC_PREFIX)}
    )
    return out


def organic_view(snap: Snapshot) -> Snapshot:
    """What the page shows with the switch on: the organic measures, the organic latest posts
    (pipeline health keeps counting every post)."""
    latest = snap.latest
    if "spam" in latest.columns:
        latest = latest[~latest["spam"].fillna(False).astype(bool)]
    return dataclasses.replace(
        snap,
        totals=organic_totals(snap.totals),
        timeline=organic_columns(snap.timeline),
        coin_totals=organic_columns(snap.coin_totals),
        coin_buckets=organic_columns(snap.coin_buckets),
        latest=latest,
    )


def view(snap: Snapshot) -> Snapshot:
    """The snapshot as the switch says."""
    return organic_view(snap) if organic_only() else snap


# ------------------------------------------------------------------------------- bot share ---
def bot_share(
    coin_totals: pd.DataFrame, organic: bool, limit: int = BOT_SHARE_COINS
) -> pd.DataFrame:
    """Per coin (most mentioned first): posts, the share that is spam, and the mean and the
    influence-weighted mean compound (of organic posts when organic, else of all)."""
    columns = ["coin", "tweets", "bot_share", "mean", "weighted_mean"]
    if coin_totals.empty or "organic_tweets" not in coin_totals.columns:
        return pd.DataFrame(columns=columns)
    t = coin_totals.head(limit)
    prefix = ORGANIC_PREFIX if organic else ""
    scored = (t[f"{prefix}positive"] + t[f"{prefix}neutral"] + t[f"{prefix}negative"]).astype(float)
    tweets = t["tweets"].astype(float)
    out = pd.DataFrame(
        {
            "coin": t["coin"],
            "tweets": t["tweets"].astype("int64"),
            "bot_share": (1 - t["organic_tweets"] / tweets.where(tweets > 0)).fillna(0.0) * 100,
            "mean": t[f"{prefix}compound_sum"] / scored.where(scored > 0),
            "weighted_mean": t[f"{prefix}weighted_compound_sum"]
            / t[f"{prefix}weight_sum"].where(t[f"{prefix}weight_sum"] > 0),
        }
    )
    return out.reset_index(drop=True)


# ------------------------------------------------------------------------------- campaigns ---
def active_campaigns(conn: queries.Connection, window: timedelta) -> pd.DataFrame:
    """The campaigns with posts in the window: posts, accounts, coins, first and last post, and
    the text of the earliest post in the window; the largest first."""
    posts = queries._frame(conn, _CAMPAIGN_POSTS, {"window": window, "limit": CAMPAIGN_POSTS})
    return summarise(posts)


def summarise(posts: pd.DataFrame) -> pd.DataFrame:
    """One row per campaign of its posts (columns of `_CAMPAIGN_POSTS`)."""
    columns = ["campaign", "posts", "accounts", "coins", "first_post", "last_post", "sample"]
    if posts.empty:
        return pd.DataFrame(columns=columns)
    posts = posts.sort_values(["created_at", "id"])
    rows = []
    for campaign, group in posts.groupby("campaign_id", sort=False):
        coins: dict[str, int] = {}
        for listed in group["coins"]:
            for coin in _as_list(listed):
                coins[coin] = coins.get(coin, 0) + 1
        top = sorted(coins, key=lambda c: (-coins[c], c))
        rows.append(
            {
                "campaign": str(campaign),
                "posts": len(group),
                "accounts": int(group["account"].nunique()),
                "coins": " ".join(top[:5]),
                "first_post": group["created_at"].iloc[0],
                "last_post": group["created_at"].iloc[-1],
                "sample": str(group["text"].iloc[0]),
            }
        )
    out = pd.DataFrame(rows, columns=columns)
    return out.sort_values(["posts", "campaign"], ascending=[False, True]).reset_index(drop=True)


def _as_list(value: Any) -> list[str]:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return []
    return [str(v) for v in value]


@st.cache_data(ttl=data.LIVE_TTL, show_spinner=False, max_entries=16)
def fetch_campaigns(source: str, range_key: str) -> pd.DataFrame:
    """The active campaigns of the range (see `active_campaigns`), cached for a refresh."""
    with data.connection() as conn:
        return active_campaigns(conn, queries.RANGES[range_key])


# ---------------------------------------------------------------------------------- panels ---
def panels(snap: Snapshot) -> None:
    """Per-coin bot share beside the active campaigns (snap: the all-posts snapshot)."""
    organic = organic_only()
    try:
        table = fetch_campaigns(data.source_key(), snap.range_key)
        problem = None
    except (CryptosentError, RuntimeError) as exc:
        table, problem = pd.DataFrame(), f"Campaigns unavailable: {exc}"
    tweets = float(snap.totals.get("tweets", 0))
    spam = tweets - float(snap.totals.get("organic_tweets", tweets))
    cols = st.columns(3)
    cols[0].metric("Bot share", f"{100 * spam / tweets:.1f} %" if tweets else "—", border=True,
                   help="spam, bots' and campaign posts among all posts of the range")  # fmt: skip
    cols[1].metric("Active campaigns", f"{len(table):,}", border=True,
                   help="coordinated campaigns with posts in the range")  # fmt: skip
    cols[2].metric("Campaign posts", f"{int(table['posts'].sum()) if len(table) else 0:,}",
                   border=True)  # fmt: skip
    left, right = st.columns([1, 1.6])
    with left:
        st.markdown("**Bot share** · spam, bots and campaigns among each coin's posts")
        shares = bot_share(snap.coin_totals, organic)
        if shares.empty:
            st.caption("No coin mentions in this range.")
        else:
            which = "organic posts" if organic else "all posts"
            st.dataframe(
                shares, hide_index=True, height=360, key="bot_share",
                column_config={
                    "bot_share": st.column_config.ProgressColumn(
                        "bot share", min_value=0.0, max_value=100.0, format="%.1f %%"
                    ),
                    "mean": st.column_config.NumberColumn(f"mean ({which})", format="%+.3f"),
                    "weighted_mean": st.column_config.NumberColumn(
                        f"influence-weighted ({which})", format="%+.3f",
                        help="each post weighs 1 + log10(1 + followers), at most 5",
                    ),
                },
            )  # fmt: skip
    with right:
        st.markdown("**Active campaigns** · many accounts posting one template")
        if problem:
            st.caption(problem)
            return
        if table.empty:
            st.caption("No coordinated campaign in this range.")
            return
        st.dataframe(
            table.head(CAMPAIGN_ROWS), hide_index=True, height=360, key="campaigns",
            column_config={
                "first_post": st.column_config.DatetimeColumn("first", format="HH:mm:ss"),
                "last_post": st.column_config.DatetimeColumn("last", format="HH:mm:ss"),
                "sample": st.column_config.TextColumn("sample text", width="large"),
            },
        )  # fmt: skip
