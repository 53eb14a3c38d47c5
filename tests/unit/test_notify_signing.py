"""Webhook signatures (Standard Webhooks), the retry schedule and the digest clock; no database."""

from __future__ import annotations

import datetime as dt
import json
import random

import pytest

from churndesk.errors import ValidationError
from churndesk.services.channels.config import check_webhook_secret, generate_webhook_secret
from churndesk.services.channels.webhook import (
    WebhookVerificationError,
    sign,
    signed_headers,
    verify_webhook,
    webhook_body,
)
from churndesk.services.notify import RetryPolicy, digest_boundary

NOW = dt.datetime(2025, 3, 3, 9, 0, tzinfo=dt.UTC)


def test_signature_matches_the_standard_webhooks_reference_vector() -> None:
    # The example from the Standard Webhooks specification and its reference libraries.
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    expected = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body) == expected


def test_receiver_accepts_genuine_and_detects_forged_or_replayed() -> None:
    secret = generate_webhook_secret()
    body = webhook_body({"type": "alerts", "total": 1}, NOW)
    headers = signed_headers(secret, "alerts-1-2-webhook-x", int(NOW.timestamp()), body)
    assert verify_webhook(secret, headers, body, now=NOW)["data"] == {"type": "alerts", "total": 1}
    assert headers["Idempotency-Key"] == headers["webhook-id"] == "alerts-1-2-webhook-x"

    forged = body.replace(b'"total":1', b'"total":9')
    with pytest.raises(WebhookVerificationError, match="signature"):
        verify_webhook(secret, headers, forged, now=NOW)
    with pytest.raises(WebhookVerificationError, match="signature"):
        verify_webhook(generate_webhook_secret(), headers, body, now=NOW)
    other_id = headers | {"webhook-id": "alerts-9-9-webhook-x"}
    with pytest.raises(WebhookVerificationError, match="signature"):
        verify_webhook(secret, other_id, body, now=NOW)
    with pytest.raises(WebhookVerificationError, match="tolerance"):
        verify_webhook(secret, headers, body, now=NOW + dt.timedelta(minutes=6))
    with pytest.raises(WebhookVerificationError, match="missing"):
        verify_webhook(secret, {"webhook-id": "x"}, body, now=NOW)


def test_signature_header_may_carry_several_signatures_during_rotation() -> None:
    old, new = generate_webhook_secret(), generate_webhook_secret()
    body = b"{}"
    stamp = int(NOW.timestamp())
    headers = signed_headers(new, "m", stamp, body)
    headers["webhook-signature"] = sign(old, "m", stamp, body) + " " + headers["webhook-signature"]
    assert verify_webhook(new, headers, body, now=NOW) == {}
    assert verify_webhook(old, headers, body, now=NOW) == {}


def test_body_is_the_same_bytes_on_every_retry() -> None:
    payload = {"type": "alerts", "alerts": [{"customer": "<b>Ä</b>"}]}
    assert webhook_body(payload, NOW) == webhook_body(dict(payload), NOW)
    assert json.loads(webhook_body(payload, NOW))["type"] == "churndesk.alerts"


@pytest.mark.parametrize("secret", ["whsec_short", "whsec_!!!notbase64!!!", "plain"])
def test_malformed_secrets_are_refused(secret: str) -> None:
    with pytest.raises(ValidationError):
        check_webhook_secret(secret)


def test_retry_schedule_is_exponential_capped_and_jittered_within_bounds() -> None:
    policy = RetryPolicy()
    assert [policy.nominal_delay_s(n) for n in range(1, 10)] == [
        30, 60, 120, 240, 480, 960, 1920, 3600, 3600,
    ]  # fmt: skip
    rng = random.Random(7)
    for attempt in range(1, 10):
        low, high = policy.delay_bounds_s(attempt)
        delays = [policy.delay_s(attempt, rng) for _ in range(200)]
        assert all(low <= d <= high for d in delays)
        assert max(delays) - min(delays) > 0.2 * policy.nominal_delay_s(attempt)  # really jittered
    again = random.Random(7)
    assert RetryPolicy().delay_s(1, again) == RetryPolicy().delay_s(1, random.Random(7))


def test_digest_boundary_in_local_time() -> None:
    at = dt.datetime(2025, 3, 3, 6, 30, tzinfo=dt.UTC)
    assert digest_boundary(at, 7, "UTC") == dt.datetime(2025, 3, 2, 7, tzinfo=dt.UTC)
    assert digest_boundary(at, 6, "UTC") == dt.datetime(2025, 3, 3, 6, tzinfo=dt.UTC)
    # 07:00 in Paris is 06:00 UTC in winter.
    assert digest_boundary(at, 7, "Europe/Paris") == dt.datetime(2025, 3, 3, 6, tzinfo=dt.UTC)
