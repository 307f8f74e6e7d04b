"""History on the dashboard: ranges beyond PostgreSQL's retention (30 d, 90 d, 1 y) read from the
lake's processed Parquet through DuckDB, a day at a time, never the whole lake.

`DayAggregates` keeps, per UTC day, the day's per-coin measures (`aggregates.MEASURES`, coin
``'*'`` for all posts), computed once from the day's live objects (`storage.lake_files`, the
containment rule) and cached by the day's *signature*: its object list (keys and sizes). A view
lists only the ``dt=`` folders in its range (closed days at most every `RELIST_AFTER_S`,
yesterday and today at every view); a day whose list is unchanged comes from memory or, in a new
process, from the on-disk cache (one small Parquet file per lake holding every day seen); only
new or changed days (today's, a day a compaction rewrote, a day with late posts) are read, and
only the columns the measures need. Rows are counted once per id, as PostgreSQL stores them.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Final

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from cryptosent import aggregates
from cryptosent.batch import SCHEMA
from cryptosent.config import Settings
from cryptosent.dashboard.queries import Analyzer, pick_analyzer
from cryptosent.sinks.lake import LakeLocation, lake_failure, lake_location
from cryptosent.storage.backfill import READ_ATTEMPTS, ObjectVanished, vanished
from cryptosent.storage.lake_files import LakeObject, list_layer, live

HISTORY_RANGES: Final[dict[str, int]] = {"30 d": 30, "90 d": 90, "1 y": 365}
"""The history panel's ranges, in days (today included)."""
LAYER: Final = "processed"
# the columns a day's measures read: the dedup key, the time, the coins and the measures' inputs
_NEEDED: Final = tuple(
    dict.fromkeys(("id", "created_at", "coins", "kafka_partition", "kafka_offset",
                   *aggregates.INPUTS))
)  # fmt: skip
_SCHEMA: Final = pa.schema([SCHEMA.field(name) for name in _NEEDED])
_DAY_MEASURES: Final = f"""
select coin, date_trunc('day', created_at) as day, {aggregates.computed()}
from (select *, unnest(list_append(coins, '{aggregates.ALL_COINS}')) as coin
      from day_rows
      qualify row_number() over (partition by id order by kafka_partition, kafka_offset) = 1)
group by all order by coin"""  # noqa: S608 - names and expressions are constants
_SIGNATURE: Final = "signature"
RELIST_AFTER_S: Final = 300.0
"""How long a closed day's object list is trusted before it is listed again."""


def signature(objects: Iterable[LakeObject]) -> str:
    """A day's identity: its live objects' keys and sizes (a rewrite or a new object changes it)."""
    digest = hashlib.sha256()
    for obj in sorted(objects, key=lambda o: o.key):
        digest.update(f"{obj.key}\t{obj.size}\n".encode())
    return digest.hexdigest()


def day_range(days: int, today: date | None = None) -> tuple[date, date]:
    """[since, until) of the last `days` UTC days, today included."""
    today = today or datetime.now(UTC).date()
    until = today + timedelta(days=1)
    return until - timedelta(days=days), until


@dataclass
class ViewStats:
    """How one view was answered."""

    days: int = 0
    objects: int = 0
    cached: int = 0
    """Days whose measures came from memory or the disk cache."""
    computed: int = 0
    """Days read from the lake (new or changed)."""
    rows_read: int = 0


class DayAggregates:
    """Per-day, per-coin measures of a lake, each day computed once per object list.

    Closed days (before yesterday) are listed again at most every `relist_after_s` seconds;
    yesterday and today at every view. The disk cache is one Parquet file per lake (every day
    held, with its signature), read once per process and rewritten when a day was computed."""

    def __init__(
        self,
        location: LakeLocation,
        cache_dir: Path | None = None,
        *,
        relist_after_s: float = RELIST_AFTER_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.location = location
        slug = hashlib.sha256(location.url.encode()).hexdigest()[:16]
        self.cache_file = cache_dir / f"{slug}.parquet" if cache_dir is not None else None
        self.relist_after_s = relist_after_s
        self._clock = clock
        self._memory: dict[date, tuple[str, pa.Table]] = {}
        # day -> (when listed, its live objects, their signature)
        self._listed: dict[date, tuple[float, list[LakeObject], str]] = {}
        self._cache_read = False
        self._lock = threading.Lock()
        self._duck = duckdb.connect(":memory:")
        self._duck.execute("set TimeZone = 'UTC'")
        self.last = ViewStats()

    def per_day(self, since: date, until: date, today: date | None = None) -> pa.Table:
        """Measures per (coin, day) for the days in [since, until), days in order."""
        with self._lock:
            if not self._cache_read:
                self._memory.update(self._read_cache())
                self._cache_read = True
            listing = self._listing(since, until, today or datetime.now(UTC).date())
            stats = ViewStats()
            tables = []
            for day, (objects, key) in sorted(listing.items()):
                for attempt in range(1, READ_ATTEMPTS + 1):
                    try:
                        table = self._day(day, objects, key, stats) if objects else None
                        break
                    except ObjectVanished:  # a compaction replaced it: list the day again
                        if attempt == READ_ATTEMPTS:
                            raise
                        self._list(day, day + timedelta(days=1), self._clock())
                        objects, key = self._listed[day][1:]
                if table is not None:
                    stats.days += 1
                    stats.objects += len(objects)
                    tables.append(table)
            if stats.computed:
                self._write_cache()
            self.last = stats
        if not tables:
            return self._measures(_SCHEMA.empty_table())
        return pa.concat_tables(tables)

    def frame(self, days: int, today: date | None = None) -> pd.DataFrame:
        """The last `days` days (today included) as a DataFrame: coin, day, the measures."""
        since, until = day_range(days, today)
        frame: pd.DataFrame = self.per_day(since, until, today).to_pandas()
        return frame

    def _listing(
        self, since: date, until: date, today: date
    ) -> dict[date, tuple[list[LakeObject], str]]:
        now = self._clock()
        open_from = min(max(since, today - timedelta(days=1)), until)
        stale = [
            day
            for day in _days(since, open_from)
            if (held := self._listed.get(day)) is None or now - held[0] > self.relist_after_s
        ]
        if stale:
            self._list(stale[0], stale[-1] + timedelta(days=1), now)
        if open_from < until:
            self._list(open_from, until, now)
        return {day: self._listed[day][1:] for day in _days(since, until)}

    def _list(self, since: date, until: date, now: float) -> None:
        found: dict[date, list[LakeObject]] = defaultdict(list)
        for obj in live(list_layer(self.location, LAYER, since=since, until=until)):
            if obj.day is not None and since <= obj.day < until and obj.ext == ".parquet":
                found[obj.day].append(obj)
        for day in _days(since, until):
            objects = found.get(day, [])
            self._listed[day] = (now, objects, signature(objects))

    def _day(self, day: date, objects: list[LakeObject], key: str, stats: ViewStats) -> pa.Table:
        held = self._memory.get(day)
        if held is not None and held[0] == key:
            stats.cached += 1
            return held[1]
        rows = self._read(objects)
        stats.computed += 1
        stats.rows_read += rows.num_rows
        table = self._measures(rows)
        self._memory[day] = (key, table)
        return table

    def _read(self, objects: list[LakeObject]) -> pa.Table:
        paths = [f"{self.location.base}/{o.key}" for o in objects]
        try:
            dataset = pads.dataset(
                paths, schema=SCHEMA, format="parquet", filesystem=self.location.fs
            )
            return dataset.to_table(columns=list(_NEEDED))
        except (OSError, pa.ArrowException) as err:
            if vanished(err):
                raise ObjectVanished(f"{self.location.url}/{LAYER}: {err}") from err
            if isinstance(err, OSError):
                raise lake_failure(err, f"reading {self.location.url}/{LAYER} failed") from err
            raise

    def _measures(self, rows: pa.Table) -> pa.Table:
        self._duck.register("day_rows", rows)
        try:
            return self._duck.sql(_DAY_MEASURES).to_arrow_table()
        finally:
            self._duck.unregister("day_rows")

    def _read_cache(self) -> dict[date, tuple[str, pa.Table]]:
        path = self.cache_file
        if path is None or not path.is_file():
            return {}
        try:
            table = pq.read_table(path)
        except (OSError, pa.ArrowException):
            return {}  # a damaged cache is computed again
        if table.num_rows == 0 or table.schema.names[-1] != _SIGNATURE:
            return {}
        days = table.column("day").cast(pa.date32()).to_numpy()
        starts = [0, *(np.flatnonzero(days[1:] != days[:-1]) + 1).tolist(), table.num_rows]
        measures = table.drop_columns([_SIGNATURE])
        held = {}
        for lo, hi in itertools.pairwise(starts):
            day = date.fromisoformat(str(days[lo]))
            held[day] = (str(table.column(_SIGNATURE)[lo]), measures.slice(lo, hi - lo))
        return held

    def _write_cache(self) -> None:
        path = self.cache_file
        if path is None:
            return
        parts = [
            table.append_column(_SIGNATURE, pa.array([key] * table.num_rows, pa.string()))
            for _day, (key, table) in sorted(self._memory.items())
            if table.num_rows
        ]
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            temp = path.with_name(f".tmp-{uuid.uuid4().hex}")
            pq.write_table(pa.concat_tables(parts), temp)
            os.replace(temp, path)
        except (OSError, pa.ArrowException):
            pass  # the disk cache is an optimisation: memory still holds the days


def _days(since: date, until: date) -> list[date]:
    return [since + timedelta(days=i) for i in range((until - since).days)]


# ---------------------------------------------------------------------------- the panel ---
_VIEWS: dict[str, DayAggregates] = {}
_VIEWS_LOCK = threading.Lock()
HISTORY_COINS: Final = 3
"""Coins drawn by default: the most posted of the range."""


def cache_dir(settings: Settings) -> Path:
    """Where the per-day measures are kept between dashboard runs (under the stack folder)."""
    return settings.stack_dir / "history-cache"


def day_aggregates(settings: Settings) -> DayAggregates:
    """The one `DayAggregates` of the configured lake in this process (shared by all viewers)."""
    with _VIEWS_LOCK:
        view = _VIEWS.get(settings.lake_url)
        if view is None:
            view = DayAggregates(lake_location(settings), cache_dir(settings))
            _VIEWS[settings.lake_url] = view
        return view


def panel(analyzer: Analyzer) -> None:
    """The history panel: off until the viewer turns it on (it reads the lake), then a range,
    coins, and their daily sentiment over volume."""
    import streamlit as st

    from cryptosent.dashboard import campaigns, charts, data
    from cryptosent.dashboard.lake import LAKE_ERRORS

    shown = st.toggle(
        "History from the lake", value=False, key="history",
        help="Days beyond PostgreSQL's retention, from the lake's Parquet (docs/dashboard.md)",
    )  # fmt: skip
    if not shown:
        return
    choice = st.segmented_control(
        "History range", list(HISTORY_RANGES), default="90 d", required=True,
        key="history_range",
    )  # fmt: skip
    view = day_aggregates(data.settings())
    try:
        frame = view.frame(HISTORY_RANGES[str(choice or "90 d")])
    except LAKE_ERRORS as exc:
        st.warning(f"The lake cannot be read: {' '.join(str(exc).split())}", icon="🔌")
        return
    stats = view.last
    if frame.empty:
        st.caption(f"No posts in the lake in the last {choice}.")
        return
    if campaigns.organic_only():
        frame = campaigns.organic_columns(frame)
    frame = pick_analyzer(frame, analyzer).rename(columns={"day": "bucket"})
    volume = frame.groupby("coin")["tweets"].sum().sort_values(ascending=False)
    options = [str(c) for c in volume.index]
    picked = st.multiselect(
        "History coins", options,
        default=[c for c in options if c != aggregates.ALL_COINS][:HISTORY_COINS],
        key="history_coins", max_selections=6,
        format_func=lambda c: "all coins" if c == aggregates.ALL_COINS else c,
    )  # fmt: skip
    figure = charts.coin_drilldown(frame, list(picked))
    figure.update_layout(title={"text": f"History ({choice}): daily sentiment and volume"})
    st.plotly_chart(figure, key="history_chart")
    st.caption(
        f"{stats.days} day(s) from {stats.objects:,} lake object(s): {stats.cached} from the "
        f"cache, {stats.computed} read ({stats.rows_read:,} rows)"
    )
