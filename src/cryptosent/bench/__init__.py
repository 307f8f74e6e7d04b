"""The benchmarks, shipped with the package (`cryptosent bench`).

- `run`: the stages, their sizes and targets, one result dict (`run`, `verdicts`)
- `pipeline`: produce, process and freshness through the real CLI, each in a sandbox
- `dashboard`: every dashboard query at 10M stored tweets
- `sentiment`: our analyzers against vaderSentiment
"""
