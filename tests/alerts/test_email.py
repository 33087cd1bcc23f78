"""Email notifications over SMTP to a real aiosmtpd server on 127.0.0.1, logging in with the user and
password the collector reads from its environment."""

from __future__ import annotations

from email import message_from_bytes, policy

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from alert_helpers import fast_collector, ikey_of, request_envelope, send, wait_for
from collector_process import free_port


class Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        self.messages.append((session.authenticated, envelope.rcpt_tos, message_from_bytes(envelope.content, policy=policy.default)))
        return "250 OK"


def _authenticate(server, session, envelope, mechanism, auth_data):
    return AuthResult(success=(auth_data.login, auth_data.password) == (b"alerts", b"pw"))


def test_a_fired_rule_sends_a_readable_email_with_a_link_to_its_query(tmp_path):
    inbox, port = Inbox(), free_port()
    smtp = Controller(inbox, hostname="127.0.0.1", port=port, authenticator=_authenticate, auth_require_tls=False)
    smtp.start()
    env = {"INSIGHTS_SMTP_HOST": "127.0.0.1", "INSIGHTS_SMTP_PORT": str(port), "INSIGHTS_SMTP_USER": "alerts",
           "INSIGHTS_SMTP_PASSWORD": "pw", "INSIGHTS_DASHBOARD_URL": "http://127.0.0.1:8501"}
    collector = fast_collector(tmp_path / "data", env).start()
    try:
        service = collector.create_service("mail")
        name, ikey = service["name"], ikey_of(service)
        with collector.admin as api:
            api.post(f"/api/services/{name}/action-groups", json={"name": "team", "emails": ["oncall@example.com"]})
            api.post(f"/api/services/{name}/alert-rules", json={
                "name": "slow-requests", "frequency": 1, "window": 60, "query": "requests", "measure": "avg(duration)",
                "operator": "GreaterThan", "threshold": 100, "severity": 2, "action_groups": ["team"]})
            send(collector, ikey, [request_envelope(ikey, duration_ms=400)])
            wait_for(lambda: inbox.messages, 20, "the email")
            log = wait_for(lambda: [d for d in api.get(f"/api/services/{name}/alert-deliveries").json()
                                    if d["status"] == "delivered"], 10, "the ledger to say delivered")
    finally:
        collector.stop()
        smtp.stop()
    authenticated, recipients, message = inbox.messages[0]
    assert authenticated and recipients == ["oncall@example.com"]
    assert message["Subject"].strip().startswith("[Fired] Sev2 slow-requests on " + name)
    text = message.get_content()
    assert "Value:      400.0 (Average of duration)" in text and "Threshold:  GreaterThan 100.0" in text
    assert f"http://127.0.0.1:8501/logs?service={name}&query=requests" in text
    assert message["Idempotency-Key"] == log[0]["key"]
