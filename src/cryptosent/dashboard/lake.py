"""Lake mode: the Parquet lake (`<lake>/processed/dt=.../hour=.../*.parquet`) in DuckDB.

The lake is read through pyarrow's filesystem (S3, including custom endpoints such as the local
versitygw, or a local directory), registered in an in-memory DuckDB, and shaped into the tables
the queries expect (`queries.LAKE_VIEWS`). The dashboard reloads it every half minute; the lake
itself is written about once a minute, so that loses nothing.

Only the live objects are read (`storage.lake_files.live_objects`: compaction's merged objects,
not the small ones they replace), so a compaction running meanwhile never doubles or drops a row;
an object deleted between the listing and the read (after compaction's grace period) makes the
load start again from a fresh listing.
"""

from __future__ import annotations

import re
from typing import Final

import duckdb
import pyarrow as pa
import pyarrow.dataset as pads

from cryptosent.batch import SCHEMA
from cryptosent.config import Settings
from cryptosent.dashboard.queries import LAKE_VIEWS
from cryptosent.errors import CryptosentError
from cryptosent.sinks.lake import lake_location
from cryptosent.storage.lake_files import live_objects

LAKE_ERRORS: Final = (duckdb.Error, OSError, pa.ArrowException, CryptosentError)
LOAD_ATTEMPTS: Final = 3
"""Loads tried when objects vanish between listing and reading (a compaction's deletes)."""
_VANISHED = re.compile(
    r"not ?found|no[ _]such[ _](file|key)|nosuchkey|does not exist", re.IGNORECASE
)


def lake_dataset(settings: Settings, lake_url: str) -> pads.Dataset:
    """The live processed Parquet objects of the lake as one Arrow dataset (empty when there
    is none yet)."""
    location = lake_location(settings, lake_url)
    keys = live_objects(location, "processed")
    if not keys:
        return pads.dataset(pa.Table.from_pylist([], schema=SCHEMA))
    return pads.dataset(
        [f"{location.base}/{key}" for key in keys], schema=SCHEMA, format="parquet",
        filesystem=location.fs,
    )  # fmt: skip


def open_lake_db(settings: Settings, lake_url: str) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB holding the lake as `tweets`, `tweet_coins` and `coin_minute`."""
    for attempt in range(1, LOAD_ATTEMPTS + 1):
        db = duckdb.connect(":memory:")
        try:
            db.execute("set TimeZone = 'UTC'")
            db.register("lake", lake_dataset(settings, lake_url))
            for statement in LAKE_VIEWS:
                db.execute(statement)
            db.unregister("lake")
            return db
        except LAKE_ERRORS as err:
            db.close()
            vanished = isinstance(err, FileNotFoundError) or _VANISHED.search(str(err))
            if attempt == LOAD_ATTEMPTS or not vanished:
                raise
    raise AssertionError("unreachable")
