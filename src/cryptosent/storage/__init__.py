"""History maintenance: jobs that read or rewrite what the sinks wrote (lake compaction,
retention, backfill). `lake_files` is the one place that says which lake objects are live."""
