"""Settings shared by every desktop of one database (band cut-offs, revenue horizon, ...)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, select

from churndesk.db.engine import begin_write
from churndesk.db.models import Setting
from churndesk.errors import ValidationError
from churndesk.services import audit
from churndesk.services.changes import Changes, publish

SCORING_KEY = "scoring"


@dataclass(frozen=True)
class ScoringSettings:
    """Scores at or above a cut-off fall in the higher band; revenue at risk covers a horizon."""

    band_cutoffs: tuple[float, float, float] = (40.0, 60.0, 80.0)
    horizon_months: float = 12.0

    def __post_init__(self) -> None:
        cuts = self.band_cutoffs
        if len(cuts) != 3 or not 0 < cuts[0] < cuts[1] < cuts[2] < 100:
            raise ValidationError(
                "Band cut-offs must be three increasing scores between 0 and 100 "
                "(medium, high, critical), for example 40, 60, 80."
            )
        if not 0 < self.horizon_months <= 120:
            raise ValidationError("The revenue-at-risk horizon must be between 1 and 120 months.")

    def as_dict(self) -> dict[str, Any]:
        return {"band_cutoffs": list(self.band_cutoffs), "horizon_months": self.horizon_months}


def _read(connection: Connection, key: str) -> Any:
    return connection.scalar(select(Setting.value).where(Setting.key == key))


def scoring_settings(engine_or_connection: Engine | Connection) -> ScoringSettings:
    if isinstance(engine_or_connection, Engine):
        with engine_or_connection.connect() as connection:
            raw = _read(connection, SCORING_KEY)
    else:
        raw = _read(engine_or_connection, SCORING_KEY)
    if not isinstance(raw, dict):
        return ScoringSettings()
    cuts = raw.get("band_cutoffs") or (40.0, 60.0, 80.0)
    return ScoringSettings(
        band_cutoffs=(float(cuts[0]), float(cuts[1]), float(cuts[2])),
        horizon_months=float(raw.get("horizon_months", 12.0)),
    )


def save_scoring_settings(
    engine: Engine, settings: ScoringSettings, *, actor: str | None = None
) -> None:
    """Store the settings for every desktop; commits with an audit entry."""
    with begin_write(engine) as connection:
        old = _read(connection, SCORING_KEY)
        table = Setting.__table__
        if old is None:
            connection.execute(
                table.insert().values(key=SCORING_KEY, value=settings.as_dict(), updated_by=actor)
            )
        else:
            connection.execute(
                table.update()
                .where(table.c.key == SCORING_KEY)
                .values(value=settings.as_dict(), updated_by=actor)
            )
        audit.record(
            connection,
            actor=actor,
            action="update",
            entity="setting",
            entity_id=SCORING_KEY,
            changes={"value": [old, settings.as_dict()]},
        )
        publish(connection, Changes(settings=True))
