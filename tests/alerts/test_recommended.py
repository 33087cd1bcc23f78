"""The built-in rules for model endpoints: offered by `insights service create --recommended-alerts`
(the real CLI), valid KQL each, and judged on real data (the dry run through the SDK)."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid

from alert_helpers import ikey_of, request_envelope, send

from collector.client import Alerts, Workspace

BUILT_IN = ["availability", "exceptions-spike", "failure-rate", "init-crash", "p95-duration", "traffic-stopped"]


def test_service_create_with_recommended_alerts_adds_the_built_in_rules(alerting):
    name = f"rec-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "INSIGHTS_URL": alerting.url, "INSIGHTS_API_KEY": alerting.admin_key}
    done = subprocess.run([shutil.which("insights"), "service", "create", name, "--recommended-alerts"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "alert rules: failure-rate, p95-duration" in done.stdout
    alerts = Alerts(Workspace(alerting.url, alerting.admin_key), name)
    assert sorted(r["name"] for r in alerts.rules()) == BUILT_IN
    assert alerts.add_recommended() == []  # addable later: only what is missing


def test_the_failure_rate_rule_judges_real_requests(alerting):
    service = alerting.create_service("rec")
    name, ikey = service["name"], ikey_of(service)
    alerts = Alerts(Workspace(alerting.url, alerting.admin_key), name)
    alerts.add_recommended()
    send(alerting, ikey, [request_envelope(ikey, success=False)] + [request_envelope(ikey)] * 9)
    series = alerts.test_rule("failure-rate")["series"]
    assert series == [{"dimensions": {}, "value": 10.0, "threshold": 5.0, "band": None, "failing": True}]
    assert alerts.test_rule("init-crash")["would_fire"] == []
