-- Raw rows by day (docs/storage.md, "PostgreSQL: partitions and retention"): `tweets` and
-- `tweet_coins` become range-partitioned on `created_at`, one partition per UTC day
-- (`tweets_pYYYYMMDD`) plus a default partition for posts dated outside the prepared days, so
-- retention drops whole days (cryptosent.storage.retention) instead of deleting rows. The
-- aggregates (coin_minute, coin_hour), alerts and price_minute stay as they are, kept for good.
--
-- A unique key of a partitioned table must contain the partition key: `tweets` is keyed by
-- (id, created_at). A replay after a crash re-reads the same Kafka message, so the same id
-- comes with the same created_at and `on conflict (id, created_at) do nothing` skips it as
-- `on conflict (id)` did. `tweet_coins` is keyed by (coin, tweet_id, created_at).
--
-- Every row is copied once into the new tables, in this one transaction (writers and readers
-- wait); the counts and the aggregates are unchanged (tests/integration/test_retention.py).

lock table tweets, tweet_coins in access exclusive mode;

alter table tweets rename to tweets_unpartitioned;
alter table tweet_coins rename to tweet_coins_unpartitioned;
-- the old indexes give their names back (the old tables are dropped below)
alter table tweets_unpartitioned drop constraint tweets_pkey;
drop index tweets_created_at_idx, tweets_stored_xid_idx, tweets_campaign_idx;
alter table tweet_coins_unpartitioned drop constraint tweet_coins_pkey;
drop index tweet_coins_coin_created_idx;

-- same columns in the same order, defaults (stored_xid's pg_current_xact_id()) and checks
create table tweets (like tweets_unpartitioned including defaults including constraints)
    partition by range (created_at);
create table tweet_coins (like tweet_coins_unpartitioned including defaults including constraints)
    partition by range (created_at);
create table tweets_default partition of tweets default;
create table tweet_coins_default partition of tweet_coins default;

-- A partition for each UTC day that holds rows (within ten years of now; rows dated further
-- out stay in the default partition) and for yesterday to three days ahead; the processor's
-- retention job keeps creating the days ahead.
do $$
declare
    today date := (now() at time zone 'UTC')::date;
    day date;
    tbl text;
begin
    for day in
        select d from (
            select distinct (created_at at time zone 'UTC')::date as d from tweets_unpartitioned
            union
            select generate_series(today - 1, today + 3, interval '1 day')::date
        ) days
        where d between today - 3653 and today + 3653
        order by d
    loop
        foreach tbl in array array['tweets', 'tweet_coins'] loop
            execute format(
                'create table %I partition of %I for values from (%L) to (%L)',
                tbl || '_p' || to_char(day, 'YYYYMMDD'), tbl,
                day::timestamp at time zone 'UTC', (day + 1)::timestamp at time zone 'UTC');
        end loop;
    end loop;
end
$$;

insert into tweets select * from tweets_unpartitioned;
insert into tweet_coins select * from tweet_coins_unpartitioned;
drop table tweets_unpartitioned;
drop table tweet_coins_unpartitioned;

-- built once over the copied rows; every partition gets its own (attached ones too)
alter table tweets add constraint tweets_pkey primary key (id, created_at);
create index tweets_created_at_idx on tweets (created_at desc);
create index tweets_stored_xid_idx on tweets (stored_xid);
create index tweets_campaign_idx on tweets (campaign_id, created_at desc)
    where campaign_id is not null;
alter table tweet_coins add constraint tweet_coins_pkey primary key (coin, tweet_id, created_at);
create index tweet_coins_coin_created_idx on tweet_coins (coin, created_at desc);

-- the dashboard's read-only role (see 0002) reads the new tables (queries go through the parent)
do $$
begin
    if exists (select from pg_roles where rolname = 'cryptosent_reader') then
        grant select on tweets, tweet_coins to cryptosent_reader;
    end if;
end
$$;
