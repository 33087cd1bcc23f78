"""Sending what the ledger holds: webhooks and emails, with retries and backoff, each delivery on
its own in a small pool so that a slow or dead receiver holds up no other.

Delivery is at least once, with an idempotency key: an entry is pending from the commit that
created it until a receiver's 2xx (or the SMTP server's acceptance) is committed as delivered. A
crash between those two sends it again after restart, with the same `Idempotency-Key` header (and,
in an email, the same Message-ID): the key lets a receiver drop the repeat; no entry is lost.

Every request is checked against the destination policy first, on the addresses its host
resolves to now (collector/destinations.py).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import smtplib
from collections.abc import Iterable
from datetime import timedelta
from email.message import EmailMessage
from functools import partial
from urllib.parse import urlparse

import httpx
import orjson

from alerts.config import AlertsConfig
from alerts.payload import email_text, slack_body, teams_body
from alerts.ticking import Ticking, Work
from collector.destinations import forbidden_resolved
from collector.store.alerts import DELIVERED, FAILED, PENDING, Delivery, now
from collector.store.database import Store

log = logging.getLogger(__name__)

TICK_S = 0.25
MAX_BACKOFF_S = 300
SIGNATURE_HEADER = "X-Insights-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"


class DeliveryError(Exception):
    pass


def webhook_request(delivery: Delivery) -> tuple[str, bytes, dict[str, str]]:
    """(url, body, headers) of a webhook delivery: the common alert schema (or its Slack / Teams
    rendering), the receiver's headers, the idempotency key, and the HMAC-SHA256 signature of the
    body when the receiver has a secret."""
    target = delivery.payload["target"]
    body = delivery.payload["body"]
    rendered = {"slack": slack_body, "teams": teams_body}.get(target.get("format", "azure"), lambda b: b)(body)
    data = orjson.dumps(rendered)
    headers = {**target.get("headers", {}), "Content-Type": "application/json", IDEMPOTENCY_HEADER: delivery.key}
    if target.get("secret"):
        digest = hmac.new(target["secret"].encode(), data, hashlib.sha256).hexdigest()
        headers[SIGNATURE_HEADER] = f"sha256={digest}"
    return target["url"], data, headers


class Deliverer(Ticking):
    def __init__(self, store: Store, config: AlertsConfig):
        super().__init__("alert-deliveries", config.workers, TICK_S)
        self.store = store
        self.config = config
        self._http = httpx.Client(timeout=10, follow_redirects=False)

    def stop(self) -> None:
        super().stop()
        self._http.close()

    def due(self) -> Iterable[Work]:
        for delivery in self.store.alerts.due_deliveries():
            yield delivery.key, partial(self._attempt, delivery)

    def _attempt(self, delivery: Delivery) -> None:
        if not self.active():  # the alerts lease moved since this was handed out: the next holder sends it
            return
        attempts = delivery.attempts + 1
        try:
            self.send(delivery)
        except Exception as error:
            final = attempts >= self.config.max_attempts
            delay = min(self.config.retry_base_s * 2 ** (attempts - 1), MAX_BACKOFF_S)
            self.store.alerts.record_attempt(delivery.key, FAILED if final else PENDING, attempts, str(error),
                                             now() + timedelta(seconds=delay)).result()
        else:
            self.store.alerts.record_attempt(delivery.key, DELIVERED, attempts, None, now()).result()

    def send(self, delivery: Delivery) -> None:
        """One attempt; DeliveryError (or a transport error) when it did not get through."""
        target = delivery.payload["target"]
        if target["kind"] == "email":
            self._email(delivery, target["to"])
            return
        url, data, headers = webhook_request(delivery)
        parsed = urlparse(url)
        reason = forbidden_resolved(parsed.hostname or "", parsed.port)
        if reason:
            raise DeliveryError(f"refused by the destination policy: {reason}")
        response = self._http.post(url, content=data, headers=headers)
        if not 200 <= response.status_code < 300:
            raise DeliveryError(f"the webhook answered {response.status_code}: {response.text[:200]}")

    def _email(self, delivery: Delivery, to: str) -> None:
        smtp = self.config.smtp
        if smtp is None:
            raise DeliveryError("no SMTP server configured (INSIGHTS_SMTP_HOST)")
        reason = forbidden_resolved(smtp.host, smtp.port)
        if reason:
            raise DeliveryError(f"refused by the destination policy: {reason}")
        subject, text = email_text(delivery.payload["body"])
        message = EmailMessage()
        message["Subject"], message["From"], message["To"] = subject, smtp.sender, to
        message["Message-ID"] = f"<{delivery.key}@endpoint-insights>"
        message[IDEMPOTENCY_HEADER] = delivery.key
        message.set_content(text)
        with smtplib.SMTP(smtp.host, smtp.port, timeout=10) as client:
            if smtp.starttls:
                client.starttls()
            if smtp.user:
                client.login(smtp.user, smtp.password or "")
            client.send_message(message)
