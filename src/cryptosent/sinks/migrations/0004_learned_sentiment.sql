-- The learned analyzer (the default since 0004): the probability of each stored label, and the
-- label `unscored` for posts in languages it was not trained on (compound 0, counted in no
-- label column, so means over positive + neutral + negative exclude them).
alter table tweets add column if not exists confidence double precision;
alter table tweets drop constraint if exists tweets_label_check;
alter table tweets add constraint tweets_label_check
    check (label in ('positive', 'neutral', 'negative', 'unscored'));
