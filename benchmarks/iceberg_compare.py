"""PyIceberg beside the lake's Parquet + containment rule (the table-format decision in
docs/storage.md): 360 one-minute appends of 2,000 demo rows (6 hours of `make demo`), the files and
metadata they leave, compaction (an overwrite: PyIceberg has no rewrite of data files), and what
a compaction gets when the processor appends meanwhile.

Not a dependency of cryptosent: run it in a throwaway environment, after
``benchmarks/lake_compaction.py`` (its lake is the input)::

    python3 -m venv /tmp/iceberg-venv
    /tmp/iceberg-venv/bin/pip install "pyiceberg[sql-sqlite,pyarrow,pyiceberg-core]"
    nice /tmp/iceberg-venv/bin/python benchmarks/iceberg_compare.py

SQL catalog on SQLite, warehouse on the local disk (the cheapest setting for PyIceberg).
"""

from __future__ import annotations

import glob
import os
import shutil
import threading
import time

import pyarrow.parquet as pq
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.exceptions import CommitFailedException, ValidationException
from pyiceberg.transforms import HourTransform

ROOT = "/tmp/iceberg-compare"
ROWS, APPENDS = 2000, 360


def main() -> None:
    shutil.rmtree(ROOT, ignore_errors=True)
    os.makedirs(ROOT)
    source = sorted(glob.glob("/tmp/lake-compaction-bench/processed/dt=*/*.parquet"))[0]
    data = pq.read_table(source).slice(0, ROWS * APPENDS).replace_schema_metadata(None)
    catalog = SqlCatalog("bench", uri=f"sqlite:///{ROOT}/catalog.db", warehouse=f"file://{ROOT}")
    catalog.create_namespace("lake")
    table = catalog.create_table("lake.tweets", schema=data.schema)
    with table.update_spec() as spec:
        spec.add_field("created_at", HourTransform(), "hour")

    cpu, wall, times = time.process_time(), time.monotonic(), []
    for m in range(APPENDS):
        started = time.monotonic()
        table.append(data.slice(m * ROWS, ROWS), snapshot_properties={"kafka.offsets": str(m)})
        times.append(time.monotonic() - started)
    files = glob.glob(f"{ROOT}/lake/tweets/data/**/*.parquet", recursive=True)
    meta = glob.glob(f"{ROOT}/lake/tweets/metadata/*")
    print(
        f"{APPENDS} appends of {ROWS} rows: {time.monotonic() - wall:.1f} s wall, "
        f"{time.process_time() - cpu:.1f} CPU s; an append: first 10 "
        f"{sum(times[:10]) * 100:.0f} ms, last 10 {sum(times[-10:]) * 100:.0f} ms (mean wall)"
    )
    meta_mib = sum(os.path.getsize(f) for f in meta) / 2**20
    print(f"  {len(files)} data files, {len(meta)} metadata files ({meta_mib:.1f} MiB)")

    cpu, wall = time.process_time(), time.monotonic()
    rows = table.scan().to_arrow().num_rows
    print(f"scan: {rows} rows, {time.monotonic() - wall:.1f} s wall, "
          f"{time.process_time() - cpu:.1f} CPU s")  # fmt: skip

    cpu, wall = time.process_time(), time.monotonic()
    table.overwrite(table.scan().to_arrow())
    live = len(table.inspect.files())
    print(f"compaction (overwrite): {time.monotonic() - wall:.1f} s wall, "
          f"{time.process_time() - cpu:.1f} CPU s; {live} data files live")  # fmt: skip

    # the processor appending (a flush every 50 ms here) while compaction runs
    outcome = {"appends": 0, "compactions": 0, "compactions_refused": 0}
    stop = threading.Event()

    def appender() -> None:
        writer = catalog.load_table("lake.tweets")
        m = 0
        while not stop.is_set():
            writer.append(data.slice(m * ROWS, ROWS))
            outcome["appends"] += 1
            m += 1
            time.sleep(0.05)

    thread = threading.Thread(target=appender)
    thread.start()
    for _ in range(3):
        compactor = catalog.load_table("lake.tweets")
        try:
            compactor.overwrite(compactor.scan().to_arrow())
            outcome["compactions"] += 1
        except (CommitFailedException, ValidationException) as refused:
            outcome["compactions_refused"] += 1
            print(f"  compaction refused: {type(refused).__name__}: {str(refused)[:90]}")
    stop.set()
    thread.join()
    final = catalog.load_table("lake.tweets").scan().to_arrow().num_rows
    print(f"race: {outcome}; rows {final} (expected {rows + outcome['appends'] * ROWS})")


if __name__ == "__main__":
    main()
