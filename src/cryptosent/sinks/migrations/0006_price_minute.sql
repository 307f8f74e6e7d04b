-- Per-coin price minutes (issue 13), built from the `prices` topic with the same exactly-once
-- protocol as the tweets: each batch's rows and its `kafka_offsets` move in one transaction.
-- open / close are the prices of the minute's earliest and latest trade in the order
-- (ts, Kafka partition, Kafka offset); open_* / close_* keep that order key, so a late trade for
-- a minute already written merges exactly (sinks/prices.py, docs/market.md).
create table price_minute (
    coin            text not null,
    minute          timestamptz not null,
    open            double precision not null,
    high            double precision not null,
    low             double precision not null,
    close           double precision not null,
    -- sum of the trades' `size` (a message without one adds 0)
    volume          double precision not null,
    trades          bigint not null,
    open_ts         timestamptz not null,
    open_partition  integer not null,
    open_offset     bigint not null,
    close_ts        timestamptz not null,
    close_partition integer not null,
    close_offset    bigint not null,
    updated_at      timestamptz not null default now(),
    primary key (coin, minute),
    check (low <= high and trades > 0 and volume >= 0)
);
create index price_minute_minute_idx on price_minute (minute);
