"""Alerting's settings, read from the environment once, by whoever composes the collector
(insights/up.py), and handed to the extension."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int = 25
    starttls: bool = False
    user: str | None = None
    password: str | None = None
    sender: str = "endpoint-insights@localhost"


@dataclass(frozen=True)
class AlertsConfig:
    min_frequency_s: int = 60
    """The shortest rule and probe frequency (1 minute, as Azure; tests lower it)."""
    grace_s: float = 5.0
    """A window is evaluated this long after it ends, so rows sent at its end have been committed."""
    catchup_windows: int = 10
    """After a pause (a collector that was down), the newest this-many missed windows of a rule
    are evaluated, oldest first; older missed windows are skipped (README: catching up)."""
    query_timeout_s: float = 30.0
    retry_base_s: float = 5.0
    """First retry of a failed delivery after this, doubling each time (at most 5 minutes)."""
    max_attempts: int = 6
    workers: int = 4
    """Rules evaluated, and deliveries sent, at once (each its own pool)."""
    dashboard_url: str = "http://127.0.0.1:8501"
    smtp: SmtpSettings | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> AlertsConfig:
        """INSIGHTS_ALERTS_MIN_FREQUENCY_S, INSIGHTS_ALERTS_GRACE_S, INSIGHTS_ALERTS_CATCHUP_WINDOWS,
        INSIGHTS_ALERTS_RETRY_BASE_S, INSIGHTS_ALERTS_MAX_ATTEMPTS, INSIGHTS_DASHBOARD_URL, and for
        email INSIGHTS_SMTP_HOST, INSIGHTS_SMTP_PORT, INSIGHTS_SMTP_STARTTLS (true/false),
        INSIGHTS_SMTP_USER, INSIGHTS_SMTP_PASSWORD, INSIGHTS_SMTP_FROM."""
        def get(name: str, default: str) -> str:
            return environ.get(name) or default

        smtp = None
        if environ.get("INSIGHTS_SMTP_HOST"):
            smtp = SmtpSettings(environ["INSIGHTS_SMTP_HOST"], int(get("INSIGHTS_SMTP_PORT", "25")),
                                get("INSIGHTS_SMTP_STARTTLS", "false").lower() in ("1", "true", "yes"),
                                environ.get("INSIGHTS_SMTP_USER") or None, environ.get("INSIGHTS_SMTP_PASSWORD") or None,
                                get("INSIGHTS_SMTP_FROM", "endpoint-insights@localhost"))
        return cls(min_frequency_s=int(get("INSIGHTS_ALERTS_MIN_FREQUENCY_S", "60")),
                   grace_s=float(get("INSIGHTS_ALERTS_GRACE_S", "5")),
                   catchup_windows=int(get("INSIGHTS_ALERTS_CATCHUP_WINDOWS", "10")),
                   retry_base_s=float(get("INSIGHTS_ALERTS_RETRY_BASE_S", "5")),
                   max_attempts=int(get("INSIGHTS_ALERTS_MAX_ATTEMPTS", "6")),
                   dashboard_url=get("INSIGHTS_DASHBOARD_URL", "http://127.0.0.1:8501"), smtp=smtp)
