"""Prometheus metrics of the processor, served on /metrics when a port is given."""

from __future__ import annotations

import logging
import time

import pyarrow as pa
import pyarrow.compute as pc
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

log = logging.getLogger(__name__)

_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, float("inf"))


class ProcessorMetrics:
    """Counters, gauges and histograms of one processor (own registry, so tests can make many)."""

    def __init__(self, port: int | None) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.consumed = Counter("cryptosent_consumed", "Messages consumed from Kafka", registry=r)
        self.stored = Counter("cryptosent_stored", "New tweets stored in PostgreSQL", registry=r)
        self.dlq = Counter("cryptosent_dead_lettered", "Messages sent to the DLQ", registry=r)
        self.retries = Counter(
            "cryptosent_sink_retries", "Sink writes retried after a failure", ["sink"], registry=r
        )
        self.batch_seconds = Histogram(
            "cryptosent_batch_seconds", "Time to process one consumed batch", registry=r
        )
        self.sink_seconds = Histogram(
            "cryptosent_sink_seconds", "Time to write one batch to a sink", ["sink"], registry=r
        )
        self.lag = Gauge("cryptosent_consumer_lag", "Messages behind the end of the topic",
                         registry=r)  # fmt: skip
        self.freshness = Histogram(
            "cryptosent_end_to_end_seconds",
            "From a tweet's created_at to its row being committed in PostgreSQL"
            " (an evenly spaced sample of at most 256 tweets per batch)",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.port = None
        if port:
            try:
                start_http_server(port, addr="127.0.0.1", registry=r)
                self.port = port
            except OSError as err:
                log.warning("metrics: port %d unavailable (%s); /metrics disabled", port, err)

    def observe_freshness(self, table: pa.Table) -> None:
        """Record now - created_at for a sample of the rows just committed (observing every row
        of a 5,000-row batch would cost more than scoring them)."""
        if not table.num_rows:
            return
        now_us = int(time.time() * 1_000_000)
        step = -(-table.num_rows // 256)
        created = pc.cast(table.column("created_at"), pa.int64())[::step]
        for latency_us in pc.subtract(pa.scalar(now_us, pa.int64()), created).to_pylist():
            self.freshness.observe(latency_us / 1_000_000)
