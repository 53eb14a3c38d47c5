"""The audit log: who changed what, written in the same transaction as the change itself."""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from churndesk.db.models import AuditEntry


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def record(
    target: Session | Connection,
    *,
    actor: str | None,
    action: str,
    entity: str,
    entity_id: str | int | None = None,
    changes: dict[str, Any] | None = None,
) -> None:
    """Add one audit entry; does not commit (it belongs to the caller's transaction).

    ``changes`` maps a field to ``[old, new]`` for edits, or holds a summary (e.g. import counts).
    """
    values = {
        "actor": actor,
        "action": action,
        "entity": entity,
        "entity_id": None if entity_id is None else str(entity_id),
        "changes": _jsonable(changes or {}),
    }
    if isinstance(target, Session):
        target.add(AuditEntry(**values))
    else:
        target.execute(AuditEntry.__table__.insert().values(**values))
