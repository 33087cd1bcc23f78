"""Alerting: log alert rules evaluated on a schedule (fixed or learned thresholds), action groups
that notify by webhook (Azure Monitor's common alert schema) and email, and availability tests
that probe a URL; a collector extension (extension.py) over the store's alert state."""

from alerts.extension import AlertsExtension

__all__ = ["AlertsExtension"]
