"""`bench.pipeline.median_of_runs`: several runs of the process stage reported as one."""

from __future__ import annotations

import math

from cryptosent.bench.pipeline import median_of_runs


def _run(rate: float, cpu: float, peak: float, startup: float = 1.2) -> dict[str, float]:
    return {
        "process_cpu_s_per_1000_sustained": cpu, "process_startup_cpu_s": startup,
        "process_tweets_per_s": rate, "process_wall_s": 200_000 / rate,
        "process_cpu_s_per_1000": cpu + 0.006, "process_count": 200_000,
        "process_peak_rss_mib": peak,
    }  # fmt: skip


def test_each_figure_is_the_median_and_each_run_is_kept_in_order() -> None:
    runs = [_run(55_947, 0.0162, 752), _run(60_226, 0.0144, 682), _run(58_387, 0.0149, 684)]

    out = median_of_runs(runs)

    assert out["process_runs"] == 3
    assert out["process_tweets_per_s"] == 58_387
    assert out["process_cpu_s_per_1000_sustained"] == 0.0149
    assert out["process_cpu_s_per_1000"] == 0.0149 + 0.006
    assert out["process_count"] == 200_000
    assert out["process_peak_rss_mib"] == 752  # the largest: memory is a bound
    assert out["process_tweets_per_s_runs"] == [55_947, 60_226, 58_387]
    assert out["process_cpu_s_per_1000_sustained_runs"] == [0.0162, 0.0144, 0.0149]


def test_a_run_without_a_figure_is_left_out_of_its_median() -> None:
    nan = float("nan")
    runs = [_run(10_000, nan, 600), _run(12_000, 0.02, 610), _run(11_000, 0.03, 620)]

    out = median_of_runs(runs)

    assert out["process_cpu_s_per_1000_sustained"] == 0.025
    assert out["process_tweets_per_s"] == 11_000
    assert math.isnan(median_of_runs([_run(1, nan, 1)])["process_cpu_s_per_1000_sustained"])


def test_one_run_is_reported_as_it_is() -> None:
    run = _run(60_000, 0.015, 700)

    assert median_of_runs([run]) == {"process_runs": 1, **run}
