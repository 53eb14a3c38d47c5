"""E-mail over STARTTLS and implicit TLS to a real SMTP server (aiosmtpd) with a private CA.

A throwaway certificate authority and a certificate for 127.0.0.1 are made per module with
``cryptography``; the sender must verify the server against the CA file in the settings and
refuse (and retry later) when it is not given.
"""

from __future__ import annotations

import datetime as dt
import io
import ipaddress
import logging
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from sqlalchemy import Engine

from churndesk.services import alerts, notify
from churndesk.services.alerts import RuleSpec
from churndesk.services.channels.config import SmtpSettings, save_smtp_settings, smtp_settings
from tests.db import test_alert_support as support
from tests.db.test_alert_cli import Cli
from tests.db.test_alert_support import T0, Scenario
from tests.db.test_notify_email import Mailbox, free_port, raise_alerts

# Fixtures shared by the alert and notification tests (one database per module, emptied per test).
engine = support.engine
shared_db = support.shared_db

HOUR = dt.timedelta(hours=1)
UNTRUSTED = "presented a certificate that is not trusted"


# --- A private certificate authority ------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    ca_file: Path  # the CA certificate (PEM), what SmtpSettings.ca_file points to
    server: ssl.SSLContext  # a server context with a certificate for 127.0.0.1
    other_address: ssl.SSLContext  # the same CA, but a certificate for 127.0.0.2 only


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _server_context(
    directory: Path,
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    address: str,
    now: dt.datetime,
) -> ssl.SSLContext:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(f"mail server {address}"))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(address))]),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    cert_path, key_path = directory / f"{address}.pem", directory / f"{address}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    return context


CA_KEY_USAGE = x509.KeyUsage(
    digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
    key_encipherment=False, data_encipherment=False, key_agreement=False, encipher_only=False,
    decipher_only=False,
)  # fmt: skip


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("churndesk test CA"))
        .issuer_name(_name("churndesk test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(CA_KEY_USAGE, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_file = directory / "ca.pem"
    ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    return Pki(
        ca_file=ca_file,
        server=_server_context(directory, ca_key, ca_cert, "127.0.0.1", now),
        other_address=_server_context(directory, ca_key, ca_cert, "127.0.0.2", now),
    )


# --- TLS mail servers ---------------------------------------------------------------------


@dataclass
class TlsMailbox(Mailbox):
    """A Mailbox that also records the TLS version each message arrived over (None: clear)."""

    tls: list[str | None] = field(default_factory=list)
    starttls_sessions: int = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        ssl_object = server.transport.get_extra_info("ssl_object")
        self.tls.append(None if ssl_object is None else ssl_object.version())
        if session.ssl is not None:  # aiosmtpd sets it only after a STARTTLS handshake
            self.starttls_sessions += 1
        return await super().handle_DATA(server, session, envelope)


def start_tls_server(
    box: TlsMailbox, port: int, *, implicit: bool, context: ssl.SSLContext
) -> Controller:
    # aiosmtpd logs a deprecation of its own on every login (Session.login_data); not ours.
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    if implicit:
        # aiosmtpd does not count implicit TLS as TLS for AUTH (only STARTTLS), hence False.
        tls: dict[str, Any] = {"ssl_context": context, "auth_require_tls": False}
    else:
        tls = {"tls_context": context, "require_starttls": True, "auth_require_tls": True}
    controller = Controller(
        box, hostname="127.0.0.1", port=port, authenticator=box.authenticate, **tls
    )
    controller.start()
    return controller


@pytest.fixture
def starttls_server(pki: Pki) -> Iterator[tuple[TlsMailbox, int]]:
    box, port = TlsMailbox(), free_port()
    controller = start_tls_server(box, port, implicit=False, context=pki.server)
    yield box, port
    controller.stop()


def setup_email(engine: Engine, port: int, *, security: str, ca_file: Path | None) -> Scenario:
    """Users, TLS e-mail settings with a login, and a rule mailing ops@ for scores over 90."""
    world = Scenario(engine)
    world.users(("alice", "analyst", "alice@example.com"))
    save_smtp_settings(
        engine,
        SmtpSettings(host="127.0.0.1", port=port, security=security, username="churndesk",
                     from_address="alerts@churndesk.example",
                     ca_file=None if ca_file is None else str(ca_file)),
        password="s3cret",
        actor="alice",
    )  # fmt: skip
    alerts.create_rule(
        engine,
        RuleSpec(name="High", kind="score_threshold", params={"threshold": 90},
                 channels=("email",), recipients=("ops@example.com",)),
        actor="alice",
    )  # fmt: skip
    return world


def assert_delivered_over_tls(engine: Engine, box: TlsMailbox, done: notify.DispatchResult) -> None:
    assert (done.sent, done.failed) == (1, 0)
    assert box.logins == ["churndesk"]
    assert [rcpts for _, rcpts, _ in box.messages] == [["ops@example.com"]]
    assert box.tls and all(version and version.startswith("TLS") for version in box.tls)
    (message,) = notify.list_outbox(engine)
    assert (message.status, message.attempts, message.last_error) == ("sent", 1, None)


def dispatch_over_implicit_tls(
    engine: Engine, context: ssl.SSLContext, ca_file: Path
) -> tuple[TlsMailbox, int, notify.DispatchResult]:
    """Raise one alert and dispatch it to an implicit-TLS server presenting ``context``."""
    box, port = TlsMailbox(), free_port()
    controller = start_tls_server(box, port, implicit=True, context=context)
    try:
        world = setup_email(engine, port, security="tls", ca_file=ca_file)
        raise_alerts(engine, world, ["Acme"], at=T0)
        return box, port, notify.dispatch_pending(engine, worker_id="w", now=T0 + HOUR)
    finally:
        controller.stop()


# --- Tests ----------------------------------------------------------------------------------


@pytest.mark.parametrize("shared_db", ["sqlite"], indirect=True)
def test_starttls_with_a_private_ca_delivers_after_login(
    engine: Engine, pki: Pki, starttls_server: tuple[TlsMailbox, int]
) -> None:
    box, port = starttls_server
    world = setup_email(engine, port, security="starttls", ca_file=pki.ca_file)
    raise_alerts(engine, world, ["Acme"], at=T0)
    done = notify.dispatch_pending(engine, worker_id="w", now=T0 + HOUR)
    assert_delivered_over_tls(engine, box, done)
    assert box.starttls_sessions == 1  # upgraded with STARTTLS, not a TLS port


@pytest.mark.parametrize("shared_db", ["sqlite"], indirect=True)
def test_implicit_tls_with_a_private_ca_delivers(engine: Engine, pki: Pki) -> None:
    box, _port, done = dispatch_over_implicit_tls(engine, pki.server, pki.ca_file)
    assert_delivered_over_tls(engine, box, done)
    assert box.starttls_sessions == 0  # TLS from the first byte


@pytest.mark.parametrize("shared_db", ["sqlite"], indirect=True)
def test_untrusted_certificate_is_refused_then_retried_with_the_ca_file(
    engine: Engine, pki: Pki, starttls_server: tuple[TlsMailbox, int]
) -> None:
    box, port = starttls_server
    world = setup_email(engine, port, security="starttls", ca_file=None)
    raise_alerts(engine, world, ["Acme"], at=T0)
    first = notify.dispatch_pending(engine, worker_id="w", now=T0 + HOUR)
    assert (first.sent, first.failed) == (0, 1)
    assert box.messages == [] and box.logins == []  # no password went to that server
    (message,) = notify.list_outbox(engine)
    assert (message.status, message.attempts) == ("failed", 1)
    assert message.last_error is not None
    assert message.last_error.startswith(f"The mail server 127.0.0.1:{port} {UNTRUSTED} (")
    assert "set a CA file in the e-mail settings" in message.last_error
    retry_at = message.next_attempt_at
    assert retry_at is not None and retry_at > T0 + HOUR

    # The administrator adds the CA file; the retry goes through.
    settings = smtp_settings(engine)
    assert settings is not None
    save_smtp_settings(engine, replace(settings, ca_file=str(pki.ca_file)), actor="alice")
    second = notify.dispatch_pending(engine, worker_id="w", now=retry_at)
    assert second.sent == 1
    (message,) = notify.list_outbox(engine)
    assert (message.status, message.attempts) == ("sent", 2)
    assert [rcpts for _, rcpts, _ in box.messages] == [["ops@example.com"]]


@pytest.mark.parametrize("shared_db", ["sqlite"], indirect=True)
def test_certificate_for_another_address_is_refused(engine: Engine, pki: Pki) -> None:
    box, port, done = dispatch_over_implicit_tls(engine, pki.other_address, pki.ca_file)
    assert (done.sent, done.failed) == (0, 1)
    assert box.messages == []
    (message,) = notify.list_outbox(engine)
    assert message.status == "failed"
    assert f"127.0.0.1:{port} presented a certificate that is not valid for 127.0.0.1" in (
        message.last_error or ""
    )


@pytest.mark.parametrize("shared_db", ["sqlite"], indirect=True)
def test_missing_ca_file_at_send_time_is_a_clear_retryable_error(
    engine: Engine, tmp_path: Path, pki: Pki, starttls_server: tuple[TlsMailbox, int]
) -> None:
    box, port = starttls_server
    gone = tmp_path / "ca.pem"
    gone.write_bytes(pki.ca_file.read_bytes())
    world = setup_email(engine, port, security="starttls", ca_file=gone)
    gone.unlink()  # e.g. a worker on a computer without that file
    raise_alerts(engine, world, ["Acme"], at=T0)
    done = notify.dispatch_pending(engine, worker_id="w", now=T0 + HOUR)
    assert (done.sent, done.failed) == (0, 1)
    (message,) = notify.list_outbox(engine)
    assert message.status == "failed"
    assert f"Cannot use the CA file {gone} from the e-mail settings" in (message.last_error or "")
    assert box.messages == []


@pytest.mark.parametrize("shared_db", ["sqlite"], indirect=True)
def test_cli_sets_the_ca_file_and_dispatch_uses_it(
    engine: Engine,
    shared_db: str,
    pki: Pki,
    tmp_path: Path,
    starttls_server: tuple[TlsMailbox, int],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    box, port = starttls_server
    world = Scenario(engine)
    world.users(("alice", "analyst", "alice@example.com"))
    cli = Cli(shared_db, capsys)
    monkeypatch.setattr("sys.stdin", io.StringIO("s3cret\n"))
    base = ["notify", "smtp", "--host", "127.0.0.1", "--port", str(port), "--security",
            "starttls", "--username", "churndesk", "--from", "alerts@churndesk.example",
            "--user", "alice"]  # fmt: skip

    missing = tmp_path / "missing.pem"
    error = cli.run(*base, "--ca-file", str(missing), code=1)
    assert error == f"churndesk: The CA file {missing} does not exist.\n"
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello\n")
    error = cli.run(*base, "--ca-file", str(not_pem), code=1)
    assert error == f"churndesk: The CA file {not_pem} holds no PEM certificate.\n"
    assert smtp_settings(engine) is None  # nothing saved by a refused command

    monkeypatch.chdir(pki.ca_file.parent)
    saved = cli.json(*base, "--ca-file", pki.ca_file.name, "--password-stdin")
    assert saved["ca_file"] == str(pki.ca_file)  # stored absolute, for workers elsewhere
    assert f"trusting {pki.ca_file}" in cli.run("notify", "smtp")

    alerts.create_rule(
        engine,
        RuleSpec(name="High", kind="score_threshold", params={"threshold": 90},
                 channels=("email",), recipients=("ops@example.com",)),
        actor="alice",
    )  # fmt: skip
    raise_alerts(engine, world, ["Acme"], at=dt.datetime.now(dt.UTC) - HOUR)
    dispatched = cli.json("notify", "dispatch")
    assert (dispatched["sent"], dispatched["failed"]) == (1, 0)
    assert box.logins == ["churndesk"] and len(box.messages) == 1
    assert box.starttls_sessions == 1

    # '' removes the CA file and leaves the rest as it was.
    cleared = cli.json("notify", "smtp", "--ca-file", "", "--user", "alice")
    assert cleared["ca_file"] is None and cleared["security"] == "starttls"


def test_settings_stored_before_the_ca_file_existed_still_load() -> None:
    old = {"host": "mail.example.com", "port": 465, "security": "tls", "username": "bot",
           "from_address": "alerts@example.com", "timeout_s": 20.0}  # fmt: skip
    settings = SmtpSettings.from_json(old)
    assert settings.ca_file is None
    assert settings.to_json() == old | {"ca_file": None}
    with_ca = replace(settings, ca_file="/etc/ssl/private-ca.pem")
    assert SmtpSettings.from_json(with_ca.to_json()) == with_ca
