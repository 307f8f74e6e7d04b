"""A processor wired from Settings: the consumer, the sinks of the registry, the dead-letter
queue, the alert job, metrics and retries. The only place that knows all the parts."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from cryptosent import kafka
from cryptosent.analysis.alerts import AlertRules
from cryptosent.config import Settings
from cryptosent.errors import TransientError
from cryptosent.metrics import ProcessorMetrics
from cryptosent.processor.alerts import AlertJob
from cryptosent.processor.campaigns import campaign_stage
from cryptosent.processor.checkpoint import Checkpoint
from cryptosent.processor.dead_letters import DeadLetters
from cryptosent.processor.loop import Processor, ProcessorOptions, ProcessStats
from cryptosent.processor.transform import Scorer, warm_up
from cryptosent.runtime import Backoff, Retry, StopSignal
from cryptosent.sinks.database import Database
from cryptosent.sinks.registry import open_sinks
from cryptosent.storage.retention import RetentionJob

RETRY_INITIAL_S = 0.5
RETRY_MAX_S = 30.0


def build_processor(
    settings: Settings,
    *,
    until_idle: bool = False,
    sinks: list[str] | None = None,
    metrics_port: int | None = None,
    stop: StopSignal | None = None,
    on_progress: Callable[[ProcessStats], None] | None = None,
) -> Processor:
    """Wire a processor to the configured Kafka, PostgreSQL and lake (`sinks`: names from
    `sinks.registry.SINKS`, default all)."""
    from confluent_kafka import Consumer, Producer

    warm_up()
    stop = stop or StopSignal()
    stats = ProcessStats()
    metrics = ProcessorMetrics(settings.metrics_port if metrics_port is None else metrics_port)

    def counted(what: str, _err: TransientError, _delay: float) -> None:
        stats.retries += 1
        metrics.retries.labels(sink=what).inc()

    def retry() -> Retry:
        # one backoff per component: a writer thread's success must not reset another's delays
        return Retry(
            Backoff.exponential(initial=RETRY_INITIAL_S, maximum=RETRY_MAX_S),
            stop=stop, on_retry=counted,
        )  # fmt: skip

    consumer = Consumer(kafka.consumer_config(settings))
    producer = Producer(kafka.producer_config(settings))
    checkpoint = Checkpoint(open_sinks(settings, retry, sinks), consumer, settings.topic)
    alerts = AlertJob(
        Database(settings.database_dsn(), application_name="cryptosent-alerts", stop=stop),
        producer,
        settings.alerts_topic,
        AlertRules(
            window_minutes=settings.alert_window_minutes,
            min_tweets=settings.alert_min_tweets,
            volume_factor=settings.alert_volume_factor,
            sentiment_swing=settings.alert_sentiment_swing,
        ),
        stop=stop,
    )
    # drops the days of raw rows older than the retention, hourly (docs/storage.md)
    retention = RetentionJob(
        Database(settings.database_dsn(), application_name="cryptosent-retention", stop=stop),
        settings.retention_days,
        stop=stop,
    )
    scorer = campaign_stage(settings, Scorer(), retry(), stop, sinks)
    return Processor(
        consumer=consumer,
        topic=settings.topic,
        checkpoint=checkpoint,
        dead_letters=DeadLetters(producer, settings.dlq_topic, settings.topic, stop),
        retry=retry(),
        scorer=scorer,
        jobs=[alerts, retention],
        options=ProcessorOptions(
            batch_size=settings.batch_size,
            poll_timeout_s=settings.poll_timeout_seconds,
            until_idle=until_idle,
            future_margin=timedelta(seconds=settings.future_margin_seconds),
        ),
        metrics=metrics,
        stats=stats,
        stop=stop,
        on_progress=on_progress,
    )
