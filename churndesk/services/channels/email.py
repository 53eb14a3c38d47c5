"""E-mail: render alert and digest messages (text + HTML, every value escaped) and send via SMTP."""

from __future__ import annotations

import contextlib
import datetime as dt
import html
import re
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

from churndesk.services.channels import DeliveryError, OutboundMessage
from churndesk.services.channels.config import SmtpSettings

# How many alerts an e-mail lists; the rest are counted ("and 450 more").
LISTED_IN_EMAIL = 50
SUBJECT_CHARS = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


def _clean(value: Any) -> str:
    """One line of text: no control characters (no header injection through a customer name)."""
    return _CONTROL.sub(" ", "" if value is None else str(value)).strip()


def _e(value: Any) -> str:
    return html.escape(_clean(value), quote=True)


def _number(value: Any, digits: int = 1) -> str:
    if value is None:
        return "–"
    try:
        return f"{float(value):,.{digits}f}"
    except (TypeError, ValueError):
        return _clean(value)


def _alert_line(alert: dict[str, Any]) -> list[str]:
    """Columns of one alert row: customer, external id, score, band, revenue at risk, what."""
    customer = alert.get("customer") or ("(model)" if alert.get("customer_id") is None else "")
    return [
        _clean(customer),
        _clean(alert.get("external_id") or ""),
        _number(alert.get("score")),
        _clean(alert.get("band") or ""),
        _number(alert.get("revenue_at_risk"), 2),
        _clean(alert.get("title") or ""),
    ]


HEADERS = ("Customer", "ID", "Score", "Band", "Revenue at risk", "Alert")


def _text_table(alerts: list[dict[str, Any]]) -> list[str]:
    lines = []
    for alert in alerts[:LISTED_IN_EMAIL]:
        name, external_id, score, band, revenue, title = _alert_line(alert)
        ident = f" ({external_id})" if external_id else ""
        band_text = f" {band}" if band else ""
        lines.append(f"- {name}{ident}: score {score}{band_text}, revenue at risk {revenue}")
        if title:
            lines.append(f"  {title}")
    return lines


def _html_table(alerts: list[dict[str, Any]]) -> str:
    head = "".join(f"<th align='left'>{_e(h)}</th>" for h in HEADERS)
    rows = []
    for alert in alerts[:LISTED_IN_EMAIL]:
        cells = "".join(f"<td>{_e(value)}</td>" for value in _alert_line(alert))
        rows.append(f"<tr>{cells}</tr>")
    return (
        "<table cellpadding='4' cellspacing='0' border='1' style='border-collapse:collapse'>"
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _more(total: int, listed: int) -> str:
    rest = total - min(listed, LISTED_IN_EMAIL)
    return f"and {rest:,} more in churndesk" if rest > 0 else ""


def render_email(payload: dict[str, Any]) -> RenderedEmail:
    """Subject, text part and HTML part for an alerts or digest payload."""
    if payload.get("type") == "digest":
        return _render_digest(payload)
    return _render_alerts(payload)


def _render_alerts(payload: dict[str, Any]) -> RenderedEmail:
    rule = payload.get("rule") or {}
    alerts: list[dict[str, Any]] = list(payload.get("alerts") or [])
    total = int(payload.get("total") or len(alerts))
    severity = _clean(rule.get("severity") or "warning")
    rule_name = _clean(rule.get("name") or "Alert rule")
    condition = _clean(rule.get("condition") or "")
    if total == 1 and alerts:
        only = alerts[0]
        what = _clean(only.get("customer") or only.get("title") or "")
        intro = _clean(only.get("title") or rule_name)
    else:
        what = f"{total:,} customers"
        intro = f"{total:,} alerts from the rule {rule_name}"
    subject = _clean(f"[churndesk] {severity.upper()} · {rule_name}: {what}")[:SUBJECT_CHARS]
    more = _more(total, len(alerts))
    text_lines = [intro, f"Rule: {rule_name} ({condition})" if condition else f"Rule: {rule_name}"]
    text_lines += [f"Severity: {severity}", ""]
    text_lines += _text_table(alerts)
    if more:
        text_lines.append(more)
    body_html = (
        f"<p><strong>{_e(intro)}</strong></p>"
        f"<p>Rule: {_e(rule_name)}{f' ({_e(condition)})' if condition else ''}"
        f"<br>Severity: {_e(severity)}</p>" + _html_table(alerts)
    )
    if more:
        body_html += f"<p>{_e(more)}</p>"
    return RenderedEmail(subject, "\n".join(text_lines) + "\n", _page(subject, body_html))


def _render_digest(payload: dict[str, Any]) -> RenderedEmail:
    alerts: list[dict[str, Any]] = list(payload.get("alerts") or [])
    total = int(payload.get("total") or len(alerts))
    start = _clean(payload.get("period_start", ""))[:16].replace("T", " ")
    end = _clean(payload.get("period_end", ""))[:16].replace("T", " ")
    plural = "alert" if total == 1 else "alerts"
    subject = _clean(f"[churndesk] Daily digest: {total:,} {plural} ({start} – {end} UTC)")
    subject = subject[:SUBJECT_CHARS]
    rules = list(payload.get("rules") or [])
    text_lines = [f"{total:,} {plural} from {start} to {end} UTC.", ""]
    text_lines += [f"- {_clean(r.get('name'))}: {int(r.get('count', 0)):,}" for r in rules]
    text_lines.append("")
    text_lines += _text_table(alerts)
    more = _more(total, len(alerts))
    if more:
        text_lines.append(more)
    rule_items = "".join(f"<li>{_e(r.get('name'))}: {int(r.get('count', 0)):,}</li>" for r in rules)
    body_html = (
        f"<p><strong>{_e(f'{total:,} {plural} from {start} to {end} UTC.')}</strong></p>"
        f"<ul>{rule_items}</ul>" + _html_table(alerts)
    )
    if more:
        body_html += f"<p>{_e(more)}</p>"
    return RenderedEmail(subject, "\n".join(text_lines) + "\n", _page(subject, body_html))


def _page(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{_e(title)}</title></head><body style='font-family:sans-serif'>{body}"
        "</body></html>\n"
    )


def build_email(
    rendered: RenderedEmail, *, sender: str, recipient: str, message_key: str, now: dt.datetime
) -> EmailMessage:
    """A multipart/alternative message; its Message-ID is the same on every retry."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = rendered.subject
    message["Date"] = format_datetime(now)
    domain = sender.rpartition("@")[2] or "churndesk.invalid"
    message["Message-ID"] = f"<{message_key}@{domain}>"
    message["X-Churndesk-Idempotency-Key"] = message_key
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    return message


# OpenSSL's X509_V_ERR_HOSTNAME_MISMATCH and X509_V_ERR_IP_ADDRESS_MISMATCH.
_NAME_MISMATCH = (62, 64)


def _certificate_problem(settings: SmtpSettings, exc: ssl.SSLCertVerificationError) -> str:
    """What a user can do about a mail server certificate that failed verification."""
    server = f"{settings.host}:{settings.port}"
    reason = exc.verify_message or exc.reason or str(exc)
    if exc.verify_code in _NAME_MISMATCH:
        return (
            f"The mail server {server} presented a certificate that is not valid for "
            f"{settings.host} ({reason}); use the host name the certificate was issued for."
        )
    return (
        f"The mail server {server} presented a certificate that is not trusted ({reason}); "
        "set a CA file in the e-mail settings if it uses a private certificate authority."
    )


def _close_quietly(smtp: smtplib.SMTP | None) -> None:
    if smtp is not None:
        with contextlib.suppress(OSError):
            smtp.close()


class SmtpSender:
    """Sends e-mail messages over one SMTP connection per dispatch round (plain/STARTTLS/TLS)."""

    def __init__(self, settings: SmtpSettings, password: str | None) -> None:
        self.settings = settings
        self.password = password
        self.recipients: frozenset[str] | None = None
        self._smtp: smtplib.SMTP | None = None

    @property
    def timeout_s(self) -> float:
        """The longest one delivery may take (the dispatcher keeps its lease beyond this)."""
        return float(self.settings.timeout_s)

    def _tls_context(self) -> ssl.SSLContext:
        """The system's certificate authorities plus the settings' CA file; always verifying."""
        ca_file = self.settings.ca_file
        try:
            return ssl.create_default_context(cafile=ca_file or None)
        except OSError as exc:  # a missing or unreadable file, or no PEM certificate in it
            raise DeliveryError(
                f"Cannot use the CA file {ca_file} from the e-mail settings: {exc}"
            ) from exc

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        context = self._tls_context() if s.security in ("starttls", "tls") else None
        smtp: smtplib.SMTP | None = None
        try:
            if s.security == "tls":
                smtp = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout_s, context=context)
            else:
                smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout_s)
                if context is not None:
                    smtp.starttls(context=context)
            if s.username:
                smtp.login(s.username, self.password or "")
            return smtp
        except smtplib.SMTPAuthenticationError as exc:
            _close_quietly(smtp)
            raise DeliveryError(
                f"The mail server {s.host} refused the login for {s.username} "
                f"({exc.smtp_code}); check the e-mail settings and password."
            ) from exc
        except ssl.SSLCertVerificationError as exc:  # an OSError: must come first
            _close_quietly(smtp)
            raise DeliveryError(_certificate_problem(s, exc)) from exc
        except (OSError, smtplib.SMTPException) as exc:
            _close_quietly(smtp)
            raise DeliveryError(f"Cannot reach the mail server {s.host}:{s.port}: {exc}") from exc

    def send(self, message: OutboundMessage) -> None:
        rendered = render_email(message.payload)
        email = build_email(
            rendered,
            sender=self.settings.from_address,
            recipient=message.recipient,
            message_key=message.idempotency_key,
            now=message.now,
        )
        if self._smtp is None:
            self._smtp = self._connect()
        try:
            self._smtp.send_message(email)
        except smtplib.SMTPRecipientsRefused as exc:
            self._drop()
            codes = [code for code, _ in exc.recipients.values()]
            raise DeliveryError(
                f"The mail server refused {message.recipient}: {exc.recipients}",
                permanent=all(500 <= code < 600 for code in codes),
            ) from exc
        except smtplib.SMTPDataError as exc:
            self._drop()
            raise DeliveryError(
                f"The mail server rejected the message ({exc.smtp_code}): {exc.smtp_error!r}",
                permanent=500 <= exc.smtp_code < 600,
            ) from exc
        except (OSError, smtplib.SMTPException) as exc:
            self._drop()
            raise DeliveryError(f"Sending to {message.recipient} failed: {exc}") from exc

    def _drop(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            with contextlib.suppress(OSError):
                smtp.close()

    def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            smtp.close()
