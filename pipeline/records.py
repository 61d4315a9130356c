"""Shared record shapes: dead-letter error records and the metrics namespace."""

from __future__ import annotations

from apache_beam.metrics import Metrics

METRICS_NAMESPACE = "linkbert"


def error_record(stage: str, source_file: str, record_id: str | None, reason: str, detail: str = "") -> dict:
    """A dead-letter record: which stage refused what, from which file and record, and why.

    ``reason`` is a short machine-readable token (e.g. ``parse_error``); ``detail`` is free text
    (an exception message, a byte offset).
    """
    return {
        "stage": stage,
        "source_file": source_file,
        "record_id": record_id,
        "reason": reason,
        "detail": detail[:2000],
    }


def counter(name: str):
    """A Beam counter in the linkbert namespace; the run summary reconciles these."""
    return Metrics.counter(METRICS_NAMESPACE, name)


def collect_counters(result) -> dict[str, int]:
    """Every linkbert counter of a finished pipeline result, summed over steps: ``{name: value}``."""
    from apache_beam.metrics.metric import MetricsFilter

    totals: dict[str, int] = {}
    for metric in result.metrics().query(MetricsFilter().with_namespace(METRICS_NAMESPACE))["counters"]:
        value = metric.committed if metric.committed is not None else metric.attempted
        totals[metric.key.metric.name] = totals.get(metric.key.metric.name, 0) + int(value or 0)
    return totals
