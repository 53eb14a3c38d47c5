"""What an import reads from its file: which column feeds which field, and extra columns' types.

Built from the header (``importing._make_plan``), then fed chunk by chunk: each extra column
narrows its candidate types (integer, number, boolean) with the distinct values it sees.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from churndesk.services.customer_fields import FIELDS

# JSON number literals a column may hold to be typed as a number. Integers stop at 15 digits
# (longer digit strings are ids or card numbers, and exceed what a double holds exactly); a
# leading zero ("0012") keeps a column text. The exponent is capped so every value fits a double.
_INT = r"-?(?:0|[1-9][0-9]{0,14})"
_NUMBER = _INT + r"(?:\.[0-9]{1,20})?(?:[eE][+-]?[0-9]{1,2})?"
# Whole chunks are checked with one regex over the distinct values joined by newlines: one C
# call instead of a Python call per value.
_ALL_INTS = re.compile(f"{_INT}(?:\n{_INT})*")
_ALL_NUMBERS = re.compile(f"{_NUMBER}(?:\n{_NUMBER})*")
_BOOLEANS = frozenset({"true", "false"})
# Distinct values remembered per attribute column to skip re-checking them in later chunks.
_VERIFIED_CACHE_LIMIT = 100_000


@dataclass
class AttributeColumn:
    """Type inference for one extra column, fed chunk by chunk."""

    key: str
    #: Position of the column in the file.
    index: int
    #: Staging column name (a0, a1, ...); never derived from the header, which is user input.
    staged: str
    candidates: set[str] = field(default_factory=lambda: {"integer", "number", "boolean"})
    verified: set[str] = field(default_factory=set)
    seen_value: bool = False

    def observe(self, values: set[str]) -> None:
        """Narrow the candidate types with this chunk's distinct non-blank values."""
        if not values:
            return
        self.seen_value = True
        if not self.candidates:
            return
        new = values - self.verified if self.verified else values
        if not new:
            return
        if "boolean" in self.candidates and (
            len(new) > 4 or any(v.lower() not in _BOOLEANS for v in new)
        ):
            self.candidates.discard("boolean")
        if "integer" in self.candidates or "number" in self.candidates:
            joined = "\n".join(new)
            # A value holding a newline would pass as two numbers; the count catches it.
            intact = joined.count("\n") == len(new) - 1
            if "integer" in self.candidates and not (intact and _ALL_INTS.fullmatch(joined)):
                self.candidates.discard("integer")
            if "number" in self.candidates and not (intact and _ALL_NUMBERS.fullmatch(joined)):
                self.candidates.discard("number")
        if self.candidates and len(self.verified) < _VERIFIED_CACHE_LIMIT:
            self.verified |= new

    @property
    def type(self) -> str:
        if not self.seen_value:
            return "empty"
        for kind in ("integer", "number", "boolean"):
            if kind in self.candidates:
                return kind
        return "text"


@dataclass
class ImportPlan:
    """Which CSV column feeds which field or attribute, and how fields are checked."""

    header: list[str]
    mapping: dict[str, str]
    field_index: dict[str, int]
    attributes: list[AttributeColumn]
    churned_values: frozenset[str]
    active_values: frozenset[str]
    decimal_comma: bool
    derive_status: bool
    delimiter: str
    today: dt.date

    @property
    def staged_fields(self) -> list[str]:
        fields = [f for f in FIELDS if f in self.field_index]
        if self.derive_status and "status" not in fields:
            fields.append("status")
        return fields

    def staging_columns(self) -> list[str]:
        return ["row_no", *self.staged_fields, *(a.staged for a in self.attributes)]


def attributes_json(
    attributes: Sequence[AttributeColumn],
    values: Sequence[Sequence[str | None]],
    distinct: Sequence[Collection[str | None]] | None = None,
) -> list[str]:
    """Each row's attributes as a JSON object, from the extra columns' ``values`` (None for a
    blank) and the types inferred so far; the same document the SQL of ``import_writes``
    builds from staged text. ``distinct`` may give each column's values once (the caller's
    sets: hashing a million cells again costs seconds).

    Numbers pass through as written (the type regexes admit JSON number literals only),
    booleans become true or false, anything else a JSON string. Built once per distinct value
    and column, then joined per row in C.
    """
    pieces: list[list[str]] = []
    last = len(attributes) - 1
    for k, (attribute, column) in enumerate(zip(attributes, values, strict=True)):
        once = set(column) if distinct is None else distinct[k]
        # The braces ride on the first and last pieces, so rows are joined by str.join alone.
        key = ("{" if k == 0 else "") + json.dumps(attribute.key, ensure_ascii=False) + ":"
        end = "}" if k == last else ""
        kind = attribute.type
        table: dict[str | None, str] = {None: key + "null" + end}
        for value in once:
            if value is None:
                continue
            if kind in ("integer", "number"):
                literal = value
            elif kind == "boolean":
                literal = value.lower()
            else:
                literal = json.dumps(value, ensure_ascii=False)
            table[value] = key + literal + end
        pieces.append(list(map(table.__getitem__, column)))
    return list(map(",".join, zip(*pieces, strict=True)))
