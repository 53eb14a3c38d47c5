"""Webhooks: JSON POSTs signed with HMAC-SHA256 in the Standard Webhooks style, and a verifier.

Each delivery carries ``webhook-id`` (the outbox message's idempotency key, the same on every
retry), ``webhook-timestamp`` (Unix seconds of this attempt) and ``webhook-signature``
(``v1,`` + base64 HMAC-SHA256 over ``id.timestamp.body`` with the endpoint's secret). A receiver
rejects a forged body (signature mismatch), a replay (timestamp outside its tolerance) and a
duplicate (an id it has already processed). See https://www.standardwebhooks.com.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import http.client
import json
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from churndesk import __version__
from churndesk.services.channels import DeliveryError, OutboundMessage
from churndesk.services.channels.config import WEBHOOK_SECRET_PREFIX, check_webhook_secret

DEFAULT_TOLERANCE_S = 300
# Enough of an error page to say what went wrong, not so much that last_error gets huge.
ERROR_BODY_CHARS = 200


class WebhookVerificationError(Exception):
    """A received webhook is not authentic, is too old or too new, or is malformed."""


def webhook_body(payload: dict[str, Any], created_at: dt.datetime) -> bytes:
    """The request body: the same bytes on every retry of one message."""
    kind = "churndesk.digest" if payload.get("type") == "digest" else "churndesk.alerts"
    envelope = {"type": kind, "timestamp": created_at.isoformat(), "data": payload}
    return json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value for one attempt."""
    key = check_webhook_secret(secret)
    content = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signed_headers(secret: str, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": f"churndesk/{__version__}",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, message_id, timestamp, body),
        # For receivers that de-duplicate on the common header rather than webhook-id.
        "Idempotency-Key": message_id,
    }


def verify_webhook(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: dt.datetime | None = None,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
) -> dict[str, Any]:
    """Check a received webhook as a receiver should; returns the decoded JSON body.

    Raises WebhookVerificationError for missing headers, a timestamp further than
    ``tolerance_s`` from ``now`` (a replay) or no matching ``v1`` signature (a forgery).
    Duplicates are the receiver's to drop: remember each ``webhook-id`` it has processed.
    """
    lower = {k.lower(): v for k, v in headers.items()}
    message_id = lower.get("webhook-id")
    stamp = lower.get("webhook-timestamp")
    signatures = lower.get("webhook-signature")
    if not message_id or not stamp or not signatures:
        raise WebhookVerificationError("missing webhook-id, webhook-timestamp or signature")
    try:
        timestamp = int(stamp)
    except ValueError as exc:
        raise WebhookVerificationError(f"bad timestamp {stamp!r}") from exc
    current = (now or dt.datetime.now(dt.UTC)).timestamp()
    if abs(current - timestamp) > tolerance_s:
        raise WebhookVerificationError("timestamp outside the tolerance (replayed or delayed)")
    expected = sign(secret, message_id, timestamp, body).split(",", 1)[1]
    for candidate in signatures.split():
        version, _, value = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(value, expected):
            try:
                return dict(json.loads(body))
            except (ValueError, TypeError) as exc:
                raise WebhookVerificationError("body is not a JSON object") from exc
    raise WebhookVerificationError("no valid signature")


@dataclass(frozen=True)
class Endpoint:
    name: str
    url: str
    secret: str | None


class WebhookSender:
    """POSTs webhook messages to the configured endpoints (one connection per request).

    ``recipients`` are the endpoints this computer can sign for; ``configured`` all endpoint
    names of the database, so a message to a removed endpoint can be dead-lettered rather than
    wait for ever.
    """

    def __init__(self, endpoints: Mapping[str, Endpoint], *, timeout_s: float = 10.0) -> None:
        self.endpoints = dict(endpoints)
        self.timeout_s = timeout_s
        self.recipients: frozenset[str] | None = frozenset(
            name for name, endpoint in self.endpoints.items() if endpoint.secret
        )
        self.configured = frozenset(self.endpoints)

    def send(self, message: OutboundMessage) -> None:
        endpoint = self.endpoints.get(message.recipient)
        if endpoint is None:
            raise DeliveryError(
                f"There is no webhook endpoint named '{message.recipient}' any more.",
                permanent=True,
            )
        if not endpoint.secret or not endpoint.secret.startswith(WEBHOOK_SECRET_PREFIX):
            raise DeliveryError(f"No signing secret for webhook '{endpoint.name}' here.")
        body = webhook_body(message.payload, message.created_at)
        timestamp = int(message.now.timestamp())
        headers = signed_headers(endpoint.secret, message.idempotency_key, timestamp, body)
        post(endpoint.url, body, headers, timeout_s=self.timeout_s, name=endpoint.name)

    def close(self) -> None:
        """Nothing to close: each request has its own connection."""


def post(url: str, body: bytes, headers: Mapping[str, str], *, timeout_s: float, name: str) -> int:
    """POST ``body``; returns the 2xx status or raises DeliveryError (410 Gone is permanent)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        connection = http.client.HTTPSConnection(
            host, parts.port, timeout=timeout_s, context=ssl.create_default_context()
        )
    else:
        connection = http.client.HTTPConnection(host, parts.port, timeout=timeout_s)
    try:
        connection.request("POST", path, body=body, headers=dict(headers))
        response = connection.getresponse()
        text = response.read(4096).decode("utf-8", "replace")
    except (OSError, http.client.HTTPException) as exc:
        raise DeliveryError(f"Webhook '{name}' at {host} could not be reached: {exc}") from exc
    finally:
        connection.close()
    if 200 <= response.status < 300:
        return response.status
    detail = " ".join(text.split())[:ERROR_BODY_CHARS]
    message = f"Webhook '{name}' answered HTTP {response.status}" + (
        f": {detail}" if detail else ""
    )
    # 410 Gone is the receiver saying "stop sending"; anything else may be temporary.
    raise DeliveryError(message, permanent=response.status == 410)
