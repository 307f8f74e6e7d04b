-- Core tables: one row per stored tweet, its coin mentions, per-coin minute aggregates,
-- alerts, and the consumed Kafka offsets (written in the same transaction as the rows, which
-- is what makes a replay after a crash exact).

create table tweets (
    id               text primary key,
    created_at       timestamptz not null,
    text             text not null,
    author_id        text,
    author_username  text,
    author_followers bigint,
    author_verified  boolean,
    lang             text,
    source           text,
    retweet_of       text,
    reply_to         text,
    -- the `crypto` analyzer (the default) sets compound/label; `vader` is stored beside it
    compound         double precision not null,
    pos              double precision not null,
    neu              double precision not null,
    neg              double precision not null,
    label            text not null check (label in ('positive', 'neutral', 'negative')),
    vader_compound   double precision not null,
    vader_pos        double precision not null,
    vader_neu        double precision not null,
    vader_neg        double precision not null,
    vader_label      text not null check (vader_label in ('positive', 'neutral', 'negative')),
    coins            text[] not null default '{}',
    kafka_partition  integer not null,
    kafka_offset     bigint not null,
    stored_at        timestamptz not null default now()
);
create index tweets_created_at_idx on tweets (created_at desc);

create table tweet_coins (
    coin       text not null,
    tweet_id   text not null,
    created_at timestamptz not null,
    primary key (coin, tweet_id)
);
create index tweet_coins_coin_created_idx on tweet_coins (coin, created_at desc);

-- coin '*' holds the all-tweets row of each minute, so totals need no scan of `tweets`
create table coin_minute (
    coin               text not null,
    minute             timestamptz not null,
    tweets             bigint not null,
    positive           bigint not null,
    neutral            bigint not null,
    negative           bigint not null,
    compound_sum       double precision not null,
    vader_positive     bigint not null,
    vader_neutral      bigint not null,
    vader_negative     bigint not null,
    vader_compound_sum double precision not null,
    primary key (coin, minute)
);
create index coin_minute_minute_idx on coin_minute (minute);

create table alerts (
    id           bigserial primary key,
    coin         text not null,
    minute       timestamptz not null,
    kind         text not null,
    value        double precision not null,
    baseline     double precision not null,
    message      text not null,
    created_at   timestamptz not null default now(),
    unique (coin, minute, kind)
);
create index alerts_created_idx on alerts (created_at desc);

-- Per sink ('postgres', 'lake'), the next Kafka offset it has not yet durably written.
-- The postgres row is updated in the same transaction as the tweets; the lake row right after
-- its objects are written. A restarted processor seeks to the lower of the two.
create table kafka_offsets (
    consumer_group text not null,
    topic          text not null,
    partition      integer not null,
    sink           text not null,
    next_offset    bigint not null,
    updated_at     timestamptz not null default now(),
    primary key (consumer_group, topic, partition, sink)
);

-- Lake objects being written and not yet covered by the lake's offsets. Whatever is left here
-- after a crash is deleted before its partition is processed again, so a replay never leaves
-- a duplicate object behind.
create table lake_intents (
    id             bigserial primary key,
    consumer_group text not null,
    topic          text not null,
    partitions     integer[] not null,
    keys           text[] not null,
    created_at     timestamptz not null default now()
);
