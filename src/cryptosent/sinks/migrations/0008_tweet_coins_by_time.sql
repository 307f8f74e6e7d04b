-- `tweet_coins` keyed by (coin, created_at, tweet_id) instead of (coin, tweet_id, created_at),
-- and `tweet_coins_coin_created_idx` (coin, created_at desc) dropped: the key itself now serves
-- "a coin's latest mentions" (a backward scan of each day partition's key, merged), so every
-- stored mention updates one index instead of two, and lands at the end of its coin's range
-- instead of at a random place in it. The key holds the same columns, so it refuses exactly the
-- same rows as before (docs/benchmarks.md, "PostgreSQL's side of the write": about 0.9 of the
-- server's 12 CPU ms per 1,000 stored tweets).
--
-- The key is built again on every day partition (and the default one), in this one transaction:
-- writers and readers of `tweet_coins` wait until it is done.

lock table tweet_coins in access exclusive mode;

alter table tweet_coins drop constraint tweet_coins_pkey;
drop index tweet_coins_coin_created_idx;
alter table tweet_coins add constraint tweet_coins_pkey primary key (coin, created_at, tweet_id);
