"""Lake mode: the Parquet lake (`<lake>/processed/dt=.../hour=.../*.parquet`) in DuckDB.

The lake is read through pyarrow's filesystem (S3, including custom endpoints such as the local
versitygw, or a local directory), registered in an in-memory DuckDB, and shaped into the tables
the queries expect (`queries.LAKE_VIEWS`). The dashboard reloads it every half minute; the lake
itself is written about once a minute, so that loses nothing.
"""

from __future__ import annotations

from typing import Final

import duckdb
import pyarrow as pa
import pyarrow.dataset as pads

from cryptosent.batch import SCHEMA
from cryptosent.config import Settings
from cryptosent.dashboard.queries import LAKE_VIEWS
from cryptosent.errors import CryptosentError
from cryptosent.sinks.lake import lake_location

LAKE_ERRORS: Final = (duckdb.Error, OSError, pa.ArrowException, CryptosentError)


def lake_dataset(settings: Settings, lake_url: str) -> pads.Dataset:
    """The processed Parquet of the lake as one Arrow dataset (empty when there is none yet)."""
    location = lake_location(settings, lake_url)
    root = f"{location.base}/processed"
    info = location.fs.get_file_info(root)
    if info.type.name == "NotFound":
        return pads.dataset(pa.Table.from_pylist([], schema=SCHEMA))
    return pads.dataset(
        root, schema=SCHEMA, format="parquet", filesystem=location.fs,
        partitioning="hive", exclude_invalid_files=False,
    )  # fmt: skip


def open_lake_db(settings: Settings, lake_url: str) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB holding the lake as `tweets`, `tweet_coins` and `coin_minute`."""
    db = duckdb.connect(":memory:")
    db.execute("set TimeZone = 'UTC'")
    db.register("lake", lake_dataset(settings, lake_url))
    for statement in LAKE_VIEWS:
        db.execute(statement)
    db.unregister("lake")
    return db
