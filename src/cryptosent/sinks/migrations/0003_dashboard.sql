-- Hourly rollup of coin_minute for the dashboard's long time ranges (24 h, 7 d, all): a week is
-- 168 rows per coin here instead of 10,080, which keeps every dashboard query index-backed and
-- well under 200 ms at 10M+ tweets. Statement-level triggers with transition tables add each
-- statement's changes to coin_minute, in the same transaction, so the two never disagree. The
-- processor's one upsert per batch touches a few hundred minute rows: one extra small upsert.

-- writers wait while the rollup is backfilled and the triggers are created
lock table coin_minute in share row exclusive mode;

create table coin_hour (
    coin               text not null,
    hour               timestamptz not null,
    tweets             bigint not null,
    positive           bigint not null,
    neutral            bigint not null,
    negative           bigint not null,
    compound_sum       double precision not null,
    vader_positive     bigint not null,
    vader_neutral      bigint not null,
    vader_negative     bigint not null,
    vader_compound_sum double precision not null,
    primary key (coin, hour)
);
create index coin_hour_hour_idx on coin_hour (hour);

insert into coin_hour
select coin, date_trunc('hour', minute, 'UTC'), sum(tweets), sum(positive), sum(neutral), sum(negative),
       sum(compound_sum), sum(vader_positive), sum(vader_neutral), sum(vader_negative),
       sum(vader_compound_sum)
from coin_minute group by 1, 2;

-- Each trigger adds one statement's change of coin_minute (new rows minus old rows) to
-- coin_hour. Rollup rows are upserted in key order, so concurrent processors lock them in the
-- same order and cannot deadlock on them.
create function coin_hour_after_insert() returns trigger language plpgsql as $$
begin
    insert into coin_hour as h
        select coin, date_trunc('hour', minute, 'UTC'), sum(tweets), sum(positive), sum(neutral),
               sum(negative), sum(compound_sum), sum(vader_positive), sum(vader_neutral),
               sum(vader_negative), sum(vader_compound_sum)
        from (select coin, minute, tweets, positive, neutral, negative, compound_sum,
                     vader_positive, vader_neutral, vader_negative, vader_compound_sum
              from new_rows) as delta (coin, minute, tweets, positive, neutral, negative,
              compound_sum, vader_positive, vader_neutral, vader_negative, vader_compound_sum)
        group by 1, 2 order by 1, 2
        on conflict (coin, hour) do update set
            tweets = h.tweets + excluded.tweets, positive = h.positive + excluded.positive,
            neutral = h.neutral + excluded.neutral, negative = h.negative + excluded.negative,
            compound_sum = h.compound_sum + excluded.compound_sum,
            vader_positive = h.vader_positive + excluded.vader_positive,
            vader_neutral = h.vader_neutral + excluded.vader_neutral,
            vader_negative = h.vader_negative + excluded.vader_negative,
            vader_compound_sum = h.vader_compound_sum + excluded.vader_compound_sum;
    return null;
end
$$;

create function coin_hour_after_update() returns trigger language plpgsql as $$
begin
    insert into coin_hour as h
        select coin, date_trunc('hour', minute, 'UTC'), sum(tweets), sum(positive), sum(neutral),
               sum(negative), sum(compound_sum), sum(vader_positive), sum(vader_neutral),
               sum(vader_negative), sum(vader_compound_sum)
        from (select coin, minute, tweets, positive, neutral, negative, compound_sum,
                     vader_positive, vader_neutral, vader_negative, vader_compound_sum
              from new_rows
              union all
              select coin, minute, -tweets, -positive, -neutral, -negative, -compound_sum,
                     -vader_positive, -vader_neutral, -vader_negative, -vader_compound_sum
              from old_rows) as delta (coin, minute, tweets, positive, neutral, negative,
              compound_sum, vader_positive, vader_neutral, vader_negative, vader_compound_sum)
        group by 1, 2 order by 1, 2
        on conflict (coin, hour) do update set
            tweets = h.tweets + excluded.tweets, positive = h.positive + excluded.positive,
            neutral = h.neutral + excluded.neutral, negative = h.negative + excluded.negative,
            compound_sum = h.compound_sum + excluded.compound_sum,
            vader_positive = h.vader_positive + excluded.vader_positive,
            vader_neutral = h.vader_neutral + excluded.vader_neutral,
            vader_negative = h.vader_negative + excluded.vader_negative,
            vader_compound_sum = h.vader_compound_sum + excluded.vader_compound_sum;
    return null;
end
$$;

create function coin_hour_after_delete() returns trigger language plpgsql as $$
begin
    insert into coin_hour as h
        select coin, date_trunc('hour', minute, 'UTC'), sum(tweets), sum(positive), sum(neutral),
               sum(negative), sum(compound_sum), sum(vader_positive), sum(vader_neutral),
               sum(vader_negative), sum(vader_compound_sum)
        from (select coin, minute, -tweets, -positive, -neutral, -negative, -compound_sum,
                     -vader_positive, -vader_neutral, -vader_negative, -vader_compound_sum
              from old_rows) as delta (coin, minute, tweets, positive, neutral, negative,
              compound_sum, vader_positive, vader_neutral, vader_negative, vader_compound_sum)
        group by 1, 2 order by 1, 2
        on conflict (coin, hour) do update set
            tweets = h.tweets + excluded.tweets, positive = h.positive + excluded.positive,
            neutral = h.neutral + excluded.neutral, negative = h.negative + excluded.negative,
            compound_sum = h.compound_sum + excluded.compound_sum,
            vader_positive = h.vader_positive + excluded.vader_positive,
            vader_neutral = h.vader_neutral + excluded.vader_neutral,
            vader_negative = h.vader_negative + excluded.vader_negative,
            vader_compound_sum = h.vader_compound_sum + excluded.vader_compound_sum;
    return null;
end
$$;

create trigger coin_hour_insert after insert on coin_minute
    referencing new table as new_rows
    for each statement execute function coin_hour_after_insert();
create trigger coin_hour_update after update on coin_minute
    referencing old table as old_rows new table as new_rows
    for each statement execute function coin_hour_after_update();
create trigger coin_hour_delete after delete on coin_minute
    referencing old table as old_rows
    for each statement execute function coin_hour_after_delete();

-- the dashboard's read-only role (see 0002) reads the rollup too
do $$
begin
    if exists (select from pg_roles where rolname = 'cryptosent_reader') then
        grant select on coin_hour to cryptosent_reader;
    end if;
end
$$;
