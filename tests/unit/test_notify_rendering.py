"""What recipients read: e-mail text and HTML parts (every value escaped), in-app text."""

from __future__ import annotations

import datetime as dt
from email import message_from_bytes, policy

from churndesk.services.channels.email import build_email, render_email
from churndesk.services.channels.inapp import render_inapp

EVIL = '<script>alert("x")</script> & Co\r\nBcc: victim@example.com'


def _payload(total: int = 1, name: str = EVIL) -> dict:
    alert = {
        "id": 7, "customer_id": 3, "external_id": "C<1>", "customer": name, "score": 91.25,
        "band": "critical", "revenue_at_risk": 1234.5, "title": f"High: {name}",
    }  # fmt: skip
    return {
        "type": "alerts",
        "rule": {"id": 1, "name": "High <risk>", "severity": "critical", "condition": "score ≥ 80"},
        "total": total,
        "alerts": [alert],
    }


def test_html_part_escapes_every_value_and_text_part_is_plain() -> None:
    rendered = render_email(_payload())
    assert "<script>" not in rendered.html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; Co" in rendered.html
    assert "C&lt;1&gt;" in rendered.html and "High &lt;risk&gt;" in rendered.html
    assert '<script>alert("x")</script> & Co' in rendered.text
    assert "91.2" in rendered.text and "1,234.50" in rendered.text
    # No header injection: the subject is one line.
    assert "\n" not in rendered.subject and "\r" not in rendered.subject
    assert rendered.subject.startswith("[churndesk] CRITICAL · High <risk>: ")


def test_message_has_text_and_html_parts_and_a_stable_message_id() -> None:
    rendered = render_email(_payload(total=500))
    assert "500 customers" in rendered.subject and "and 499 more" in rendered.text
    email = build_email(
        rendered, sender="churndesk@example.com", recipient="ops@example.com",
        message_key="alerts-1-7-email-abc", now=dt.datetime(2025, 3, 3, tzinfo=dt.UTC),
    )  # fmt: skip
    parsed = message_from_bytes(email.as_bytes(), policy=policy.default)
    assert parsed["Message-ID"] == "<alerts-1-7-email-abc@example.com>"
    assert parsed["To"] == "ops@example.com" and "Bcc" not in parsed
    kinds = [part.get_content_type() for part in parsed.iter_parts()]
    assert kinds == ["text/plain", "text/html"]


def test_digest_lists_rules_and_period() -> None:
    payload = {
        "type": "digest", "period_start": "2025-03-02T07:00:00+00:00",
        "period_end": "2025-03-03T07:00:00+00:00", "total": 2,
        "rules": [{"id": 1, "name": "A & B", "count": 2}], "alerts": _payload()["alerts"] * 2,
    }  # fmt: skip
    rendered = render_email(payload)
    assert (
        rendered.subject
        == "[churndesk] Daily digest: 2 alerts (2025-03-02 07:00 – 2025-03-03 07:00 UTC)"
    )
    assert "<li>A &amp; B: 2</li>" in rendered.html and "- A & B: 2" in rendered.text


def test_inapp_single_and_grouped() -> None:
    title, body = render_inapp(_payload(name="Acme"))
    assert title == "High: Acme" and "risk score 91.2" in body
    title, body = render_inapp(_payload(total=12, name="Acme"))
    assert title == "High <risk>: 12 customers" and body.endswith("and 2 more")
