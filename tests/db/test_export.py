"""Export writes exactly what the import reads back: layout, filters, a property test, the CLI."""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select

from churndesk.cli import main
from churndesk.config import sqlite_url
from churndesk.db.bulk import insert_rows
from churndesk.db.engine import make_engine
from churndesk.db.models import Customer
from churndesk.db.queries.customers import CustomerQuery
from churndesk.services.customer_fields import FIELDS
from churndesk.services.exporting import export_customers
from churndesk.services.importing import import_customers

TODAY = dt.date.today()


def records(engine: Engine) -> dict[str, dict[str, Any]]:
    """Every customer's importable values, keyed by customer ID, in comparable form."""
    with engine.connect() as connection:
        rows = connection.execute(select(Customer.__table__)).mappings().all()
    out = {}
    for row in rows:
        values = {f: row[f] for f in FIELDS}
        if values["churned_at"] is not None:
            stamp = values["churned_at"]
            values["churned_at"] = (
                stamp.replace(tzinfo=dt.UTC) if stamp.tzinfo is None else stamp.astimezone(dt.UTC)
            )
        attributes = row["attributes"]
        attributes = json.loads(attributes) if isinstance(attributes, str) else attributes
        values["attributes"] = {k: v for k, v in attributes.items() if v is not None}
        out[values["external_id"]] = values
    return out


def test_telco_export_reimports_identically(
    engine: Engine, telco_csv: Path, tmp_path: Path
) -> None:
    import_customers(engine, telco_csv)
    out = tmp_path / "export.csv"
    result = export_customers(engine, out, page_size=500)
    assert result.rows == 7043
    with out.open(encoding="utf-8", newline="") as handle:
        header = next(csv.reader(handle))
    assert tuple(header[: len(FIELDS)]) == FIELDS
    assert "TotalCharges" in header and "customerID" not in header

    copy = make_engine(sqlite_url(tmp_path / "copy.sqlite3"))
    try:
        from churndesk.db.migrate import upgrade

        upgrade(copy)
        again = import_customers(copy, out)  # no mapping: the export's own layout
        assert (again.inserted, again.rejected) == (7043, 0)
        assert records(copy) == records(engine)
        assert again.attribute_types["TotalCharges"] == "number"
    finally:
        copy.dispose()


def test_export_of_a_filtered_view(engine: Engine, telco_csv: Path, tmp_path: Path) -> None:
    import_customers(engine, telco_csv)
    out = tmp_path / "churned.csv"
    query = CustomerQuery(status="churned", sort="monthly_revenue", descending=True)
    result = export_customers(engine, out, query=query, excel_bom=True, page_size=300)
    assert result.rows == 1869
    data = out.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    with out.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    revenue = [float(r["monthly_revenue"]) for r in rows]
    assert revenue == sorted(revenue, reverse=True)
    assert {r["status"] for r in rows} == {"churned"}
    assert not list(tmp_path.glob("*.part"))


def test_cli_import_list_show_export(db_url: str, telco_csv: Path, tmp_path: Path, capsys) -> None:
    errors = tmp_path / "errors.csv"
    bad = tmp_path / "bad.csv"
    bad.write_text("customerID,MonthlyCharges,Churn\nx1,abc,Yes\nx2,5,No\n", encoding="utf-8")
    assert main(["--database", db_url, "import", "customers", str(telco_csv)]) == 0
    assert "7,043 inserted" in capsys.readouterr().out
    code = main(["--json", "--database", db_url, "import", "customers", str(bad),
                 "--errors-out", str(errors)])  # fmt: skip
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["inserted"], summary["rejected"]) == (1, 1)
    assert summary["first_errors"][0]["column"] == "MonthlyCharges"
    assert errors.exists()
    code = main(["--database", db_url, "import", "customers", str(bad), "--all-or-nothing"])
    captured = capsys.readouterr()
    assert code == 1
    assert captured.err.strip().splitlines()[-1].startswith("churndesk: 1 of 2 rows has errors")
    assert main(["--database", db_url, "import", "customers", str(bad), "--map", "bogus=x"]) == 1
    assert "not a customer field" in capsys.readouterr().err

    assert main(["--database", db_url, "customers", "list", "--status", "churned",
                 "--sort", "monthly_revenue", "--limit", "3"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "3 of 1,869 customers" in out
    assert main(["--json", "--database", db_url, "customers", "show", "7590-VHVEG"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["attributes"]["tenure"] == 1
    assert main(["--database", db_url, "customers", "show", "nobody"]) == 1
    assert "no customer" in capsys.readouterr().err
    target = tmp_path / "all.csv"
    assert main(["--database", db_url, "customers", "export", str(target)]) == 0
    assert "7,044 customers" in capsys.readouterr().out


def test_cli_summary_says_one_row_and_one_error(db_url: str, tmp_path: Path, capsys) -> None:
    one = tmp_path / "one.csv"
    one.write_text("customerID,MonthlyCharges\nx1,abc\n", encoding="utf-8")
    report = tmp_path / "one-errors.csv"
    assert main(["--database", db_url, "import", "customers", str(one),
                 "--errors-out", str(report)]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert ": 1 row, 0 inserted," in out
    assert f"Error report (1 error): {report}" in out
    assert main(["--database", db_url, "customers", "export", str(tmp_path / "none.csv")]) == 0
    assert "Exported 0 customers" in capsys.readouterr().out


# --- Property: any row the export writes reads back identical through the import -------------

_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    max_size=40,
)
_NUMBERISH = re.compile(r"-?\d[\d.eE+-]*|true|false", re.IGNORECASE)


def _free_text(value: str) -> bool:
    # A blank cell is a missing value; text that reads as a number or true/false would make the
    # column typed on import (a CSV carries no types), which the export cannot prevent.
    return bool(value.strip()) and not _NUMBERISH.fullmatch(value)


_optional_text = st.none() | _TEXT.filter(lambda v: v != "")
_ids = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Zs", "Cc"), blacklist_characters="\x00"),
    min_size=1,
    max_size=20,
).filter(lambda v: v.strip() == v and v)
_emails = st.builds(
    lambda local, domain, tld: f"{local}@{domain}.{tld}",
    st.from_regex(r"[A-Za-z0-9._%+'-]{1,12}", fullmatch=True),
    st.from_regex(r"[a-z0-9-]{1,12}", fullmatch=True),
    st.sampled_from(["com", "org", "de", "рф"]),
)
_dates = st.dates(min_value=dt.date(1900, 1, 1), max_value=TODAY)
_stamps = st.datetimes(
    min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime.combine(TODAY, dt.time())
).map(lambda d: d.replace(tzinfo=dt.UTC))
_floats = st.floats(min_value=-1e12, max_value=1e12, allow_nan=False).filter(
    lambda f: f == 0 or abs(f) >= 1e-9
)


@st.composite
def customer_rows(draw: st.DrawFn) -> list[dict[str, Any]]:
    ids = draw(st.lists(_ids, min_size=1, max_size=6, unique=True))
    rows = []
    for external_id in ids:
        churned = draw(st.booleans())
        rows.append(
            {
                "external_id": external_id,
                "name": draw(_TEXT.filter(lambda v: len(v) <= 200)),
                "email": draw(st.none() | _emails),
                "segment": draw(_optional_text),
                "plan": draw(_optional_text),
                "country": draw(_optional_text),
                "signup_date": draw(st.none() | _dates),
                "monthly_revenue": draw(
                    st.none() | st.integers(0, 10**11).map(lambda cents: cents / 100)
                ),
                "status": "churned" if churned else "active",
                "churned_at": draw(st.none() | _stamps) if churned else None,
                "owner": draw(_optional_text),
                "attributes": {
                    "note": draw(st.none() | _TEXT.filter(_free_text)),
                    "count": draw(st.none() | st.integers(-(10**15) + 1, 10**15 - 1)),
                    "ratio": draw(st.none() | _floats),
                    "flag": draw(st.none() | st.booleans()),
                    "ID code": draw(st.none() | st.from_regex(r"0[0-9]{3}", fullmatch=True)),
                },
            }
        )
    return rows


_COLUMNS = (*FIELDS, "attributes")


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rows=customer_rows())
def test_export_then_import_round_trips(rows: list[dict[str, Any]], sqlite_template: Path) -> None:
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        shutil.copyfile(sqlite_template, work / "a.sqlite3")
        shutil.copyfile(sqlite_template, work / "b.sqlite3")
        source = make_engine(sqlite_url(work / "a.sqlite3"))
        target = make_engine(sqlite_url(work / "b.sqlite3"))
        try:
            with source.begin() as connection:
                insert_rows(
                    connection, "customers", _COLUMNS, [[r[c] for c in _COLUMNS] for r in rows]
                )
            first = export_customers(source, work / "first.csv")
            result = import_customers(target, work / "first.csv")
            assert result.rejected == 0, result.errors
            assert records(target) == records(source)
            export_customers(target, work / "second.csv")
            assert (work / "second.csv").read_bytes() == (work / "first.csv").read_bytes()
            assert first.rows == len(rows)
        finally:
            source.dispose()
            target.dispose()
