"""Delivery channels for the notification outbox: the message a sender gets and how it fails."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class OutboundMessage:
    """One outbox row as a sender sees it; ``now`` is the time of this attempt."""

    id: int
    channel: str
    recipient: str
    payload: dict[str, Any]
    idempotency_key: str
    attempt: int
    created_at: dt.datetime
    now: dt.datetime


class DeliveryError(Exception):
    """A delivery attempt failed; ``permanent`` failures go straight to the dead-letter state."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class Sender(Protocol):
    """Delivers messages of one channel; raises DeliveryError when it cannot.

    ``recipients`` lists the recipients this sender can serve on this computer (None: any);
    a dispatcher only claims messages it can deliver, so a desktop without a webhook's signing
    secret leaves that webhook to a worker that has it.
    """

    recipients: frozenset[str] | None

    def send(self, message: OutboundMessage) -> None: ...

    def close(self) -> None: ...
