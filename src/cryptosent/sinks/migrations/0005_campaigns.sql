-- Bots, spam and coordinated campaigns (docs/campaigns.md): every stored tweet gets `spam` and
-- `campaign_id` (null unless the post belongs to a coordinated cluster); the aggregates gain the
-- same measures for organic posts only (not spam) and influence-weighted compound sums.

-- writers wait while the columns are added and backfilled
lock table tweets, coin_minute, coin_hour in share row exclusive mode;

alter table tweets add column spam boolean not null default false;
alter table tweets add column campaign_id text;
-- the transaction that stored the row: a processor reads the rows its peers stored since its
-- last look (xid8 >= the xmin of its previous snapshot) to keep its detector complete. Existing
-- rows get 0 (no table rewrite), new rows their writer's transaction id.
alter table tweets add column stored_xid xid8 not null default '0';
alter table tweets alter column stored_xid set default pg_current_xact_id();
create index tweets_stored_xid_idx on tweets (stored_xid);
create index tweets_campaign_idx on tweets (campaign_id, created_at desc)
    where campaign_id is not null;

-- Measures of cryptosent.aggregates (organic_*: posts that are not spam; weight: the
-- influence weight 1 + log10(1 + followers), capped at 5, over scored posts).
alter table coin_minute
    add column organic_tweets                bigint not null default 0,
    add column organic_positive              bigint not null default 0,
    add column organic_neutral               bigint not null default 0,
    add column organic_negative              bigint not null default 0,
    add column organic_compound_sum          double precision not null default 0,
    add column organic_vader_positive        bigint not null default 0,
    add column organic_vader_neutral         bigint not null default 0,
    add column organic_vader_negative        bigint not null default 0,
    add column organic_vader_compound_sum    double precision not null default 0,
    add column weight_sum                    double precision not null default 0,
    add column weighted_compound_sum         double precision not null default 0,
    add column organic_weight_sum            double precision not null default 0,
    add column organic_weighted_compound_sum double precision not null default 0;
alter table coin_hour
    add column organic_tweets                bigint not null default 0,
    add column organic_positive              bigint not null default 0,
    add column organic_neutral               bigint not null default 0,
    add column organic_negative              bigint not null default 0,
    add column organic_compound_sum          double precision not null default 0,
    add column organic_vader_positive        bigint not null default 0,
    add column organic_vader_neutral         bigint not null default 0,
    add column organic_vader_negative        bigint not null default 0,
    add column organic_vader_compound_sum    double precision not null default 0,
    add column weight_sum                    double precision not null default 0,
    add column weighted_compound_sum         double precision not null default 0,
    add column organic_weight_sum            double precision not null default 0,
    add column organic_weighted_compound_sum double precision not null default 0;

-- Backfill: every tweet stored so far is organic (spam false), so its organic measures equal
-- the all-posts ones; the weighted sums are recomputed from the rows. (The rollup triggers
-- installed now predate these columns: they add zero changes here; the repeatable step that
-- runs after this migration renders them with the new columns.)
update coin_minute m set
    organic_tweets = tweets, organic_positive = positive, organic_neutral = neutral,
    organic_negative = negative, organic_compound_sum = compound_sum,
    organic_vader_positive = vader_positive, organic_vader_neutral = vader_neutral,
    organic_vader_negative = vader_negative, organic_vader_compound_sum = vader_compound_sum,
    weight_sum = w.weight_sum, weighted_compound_sum = w.weighted_compound_sum,
    organic_weight_sum = w.weight_sum, organic_weighted_compound_sum = w.weighted_compound_sum
from (
    select coin, date_trunc('minute', created_at) as minute,
           coalesce(sum(weight) filter (where label <> 'unscored'), 0.0) as weight_sum,
           coalesce(sum(weight * compound) filter (where label <> 'unscored'), 0.0)
               as weighted_compound_sum
    from (select *, least(1 + log10(1 + greatest(coalesce(author_followers, 0), 0)::float8), 5)
                    as weight
          from tweets) t, unnest(coins || '{*}'::text[]) as coin
    group by 1, 2
) w
where m.coin = w.coin and m.minute = w.minute;

update coin_hour h set
    organic_tweets = s.organic_tweets, organic_positive = s.organic_positive,
    organic_neutral = s.organic_neutral, organic_negative = s.organic_negative,
    organic_compound_sum = s.organic_compound_sum,
    organic_vader_positive = s.organic_vader_positive,
    organic_vader_neutral = s.organic_vader_neutral,
    organic_vader_negative = s.organic_vader_negative,
    organic_vader_compound_sum = s.organic_vader_compound_sum,
    weight_sum = s.weight_sum, weighted_compound_sum = s.weighted_compound_sum,
    organic_weight_sum = s.organic_weight_sum,
    organic_weighted_compound_sum = s.organic_weighted_compound_sum
from (
    select coin, date_trunc('hour', minute, 'UTC') as hour,
           sum(organic_tweets) as organic_tweets, sum(organic_positive) as organic_positive,
           sum(organic_neutral) as organic_neutral, sum(organic_negative) as organic_negative,
           sum(organic_compound_sum) as organic_compound_sum,
           sum(organic_vader_positive) as organic_vader_positive,
           sum(organic_vader_neutral) as organic_vader_neutral,
           sum(organic_vader_negative) as organic_vader_negative,
           sum(organic_vader_compound_sum) as organic_vader_compound_sum,
           sum(weight_sum) as weight_sum, sum(weighted_compound_sum) as weighted_compound_sum,
           sum(organic_weight_sum) as organic_weight_sum,
           sum(organic_weighted_compound_sum) as organic_weighted_compound_sum
    from coin_minute group by 1, 2
) s
where h.coin = s.coin and h.hour = s.hour;
