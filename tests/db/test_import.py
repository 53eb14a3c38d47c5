"""CSV import on SQLite and PostgreSQL: real data, malformed input, modes, atomicity."""

from __future__ import annotations

import csv
import datetime as dt
import gc
import threading
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from churndesk.db.engine import make_engine
from churndesk.db.models import AuditEntry, Customer
from churndesk.errors import Cancelled, DatabaseUnavailable, ValidationError
from churndesk.services import changes
from churndesk.services.collection import BULK_THRESHOLD
from churndesk.services.importing import ImportRejected, import_customers
from tests import pg

TODAY = dt.date(2026, 11, 1)

AWKWARD = [
    "<b>Bold</b> & <script>alert('x')</script>",
    '=HYPERLINK("http://evil.example","click me")',
    "Quote \"double\" and 'single', comma",
    "Emoji 😀👩‍👩‍👧 and RTL עברית العربية",
    "Line one\nline two\r\nline three",
    "+SUM(A1:A9)",
    "  padded  ",
    "Back\\slash, tab\there, C:\\new\\table",
    "\\N",  # how COPY's text format spells NULL: must stay text
]


def write_csv(path: Path, header: list[str], rows: list[list[Any]], **fmt: Any) -> Path:
    with path.open("w", encoding=fmt.pop("encoding", "utf-8"), newline="") as handle:
        writer = csv.writer(handle, **fmt)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def snapshot(engine: Engine) -> tuple[list[tuple[Any, ...]], int]:
    """Everything an import could touch: the customers and the audit log size."""
    with engine.connect() as connection:
        rows = connection.execute(select(Customer.__table__).order_by(Customer.id)).all()
        audits = connection.scalar(select(func.count()).select_from(AuditEntry))
    return [tuple(r) for r in rows], int(audits or 0)


def customers(engine: Engine) -> dict[str, Any]:
    with engine.connect() as connection:
        rows = connection.execute(select(Customer.__table__)).mappings().all()
    return {r["external_id"]: r for r in rows}


def attributes_of(row: Any) -> dict[str, Any]:
    import json

    value = row["attributes"]
    return json.loads(value) if isinstance(value, str) else value


def seed(engine: Engine, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "seed.csv",
        ["external_id", "name", "email", "monthly_revenue", "status", "tier"],
        [
            ["s1", "Seed One", "one@example.com", "10.00", "active", "gold"],
            ["s2", "Seed Two", "", "20.50", "churned", "silver"],
        ],
    )
    import_customers(engine, path, today=TODAY)


def test_telco_sample(engine: Engine, telco_csv: Path) -> None:
    heard: list[changes.Changes] = []
    changes.add_listener(heard.append)
    try:
        result = import_customers(engine, telco_csv)
    finally:
        changes.remove_listener(heard.append)
    assert (result.rows, result.inserted, result.updated, result.rejected) == (7043, 7043, 0, 0)
    assert result.mapping == {
        "external_id": "customerID",
        "monthly_revenue": "MonthlyCharges",
        "status": "Churn",
    }
    assert result.attribute_types["TotalCharges"] == "number"
    assert result.attribute_types["SeniorCitizen"] == "integer"
    assert result.attribute_types["Contract"] == "text"
    stored = customers(engine)
    assert len(stored) == 7043
    assert sum(r["status"] == "churned" for r in stored.values()) == 1869
    total_charges = [attributes_of(r).get("TotalCharges") for r in stored.values()]
    assert sum(v is None for v in total_charges) == 11
    first = stored["7590-VHVEG"]
    assert first["monthly_revenue"] == 29.85
    assert attributes_of(first) == {
        "gender": "Female",
        "SeniorCitizen": 0,
        "Partner": "Yes",
        "Dependents": "No",
        "tenure": 1,
        "PhoneService": "No",
        "MultipleLines": "No phone service",
        "InternetService": "DSL",
        "OnlineSecurity": "No",
        "OnlineBackup": "Yes",
        "DeviceProtection": "No",
        "TechSupport": "No",
        "StreamingTV": "No",
        "StreamingMovies": "No",
        "Contract": "Month-to-month",
        "PaperlessBilling": "Yes",
        "PaymentMethod": "Electronic check",
        "TotalCharges": 29.85,
    }
    with Session(engine) as session:
        entries = session.scalars(select(AuditEntry)).all()
    assert len(entries) == 1  # one entry per import, not per row
    assert entries[0].action == "import"
    assert entries[0].changes["inserted"] == 7043
    assert entries[0].changes["file"] == telco_csv.name
    assert [c.customers for c in heard] == [True]

    again = import_customers(engine, telco_csv)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 7043)
    assert {r["version"] for r in customers(engine).values()} == {1}


def test_update_bumps_version_and_keeps_unmapped_fields(engine: Engine, tmp_path: Path) -> None:
    seed(engine, tmp_path)
    before = customers(engine)
    path = write_csv(
        tmp_path / "owners.csv",
        ["external_id", "owner", "tier", "region"],
        [["s1", "alice", "platinum", "north"], ["s3", "bob", "", "south"]],
    )
    result = import_customers(engine, path, today=TODAY)
    assert (result.inserted, result.updated, result.unchanged) == (1, 1, 0)
    after = customers(engine)
    s1 = after["s1"]
    assert s1["owner"] == "alice"
    assert s1["version"] == before["s1"]["version"] + 1
    assert s1["updated_at"] >= before["s1"]["updated_at"]
    # Fields the file does not have are kept; attributes are merged key by key.
    assert (s1["name"], s1["email"], s1["monthly_revenue"]) == ("Seed One", "one@example.com", 10)
    assert attributes_of(s1) == {"tier": "platinum", "region": "north"}
    assert after["s2"]["version"] == before["s2"]["version"]
    assert attributes_of(after["s3"]) == {"tier": None, "region": "south"}
    assert after["s3"]["name"] == ""


def test_only_rows_whose_attributes_change_are_updated(engine: Engine, tmp_path: Path) -> None:
    """The change test behind re-imports: a stored document that already holds the file's
    values (extra keys, numbers written differently) is left alone; any other is updated."""
    header = ["external_id", "tier", "score", "vip"]
    first = [["a1", "gold", "1.50", "true"], ["a2", "silver", "2", "false"]]
    first += [["a3", "bronze", "3", ""], ["a4", "gold", "4", "true"]]
    import_customers(engine, write_csv(tmp_path / "1.csv", header, first), today=TODAY)
    # An extra key from another file, and a stored text re-written by a merge (1.50 -> 1.5).
    extra = write_csv(tmp_path / "2.csv", ["external_id", "region", "score"], [["a1", "n", "1.5"]])
    assert import_customers(engine, extra, today=TODAY).updated == 1
    before = customers(engine)
    again = import_customers(engine, write_csv(tmp_path / "3.csv", header, first), today=TODAY)
    assert (again.updated, again.unchanged) == (0, 4)
    changed = [["a1", "gold", "1.50", "true"], ["a2", "silver", "2", "true"]]
    changed += [["a3", "bronze", "3", "false"], ["a4", "gold", "4.5", "true"]]
    result = import_customers(engine, write_csv(tmp_path / "4.csv", header, changed), today=TODAY)
    assert (result.updated, result.unchanged) == (3, 1)
    after = customers(engine)
    assert after["a1"]["version"] == before["a1"]["version"]
    assert attributes_of(after["a1"]) == {"tier": "gold", "score": 1.5, "vip": True, "region": "n"}
    assert attributes_of(after["a2"])["vip"] is True
    assert attributes_of(after["a3"])["vip"] is False  # was null
    assert attributes_of(after["a4"])["score"] == 4.5
    assert [after[k]["version"] for k in ("a2", "a3", "a4")] == [
        before[k]["version"] + 1 for k in ("a2", "a3", "a4")
    ]


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgresql"])
def test_postgres_a_reimport_does_not_wait_for_customers_it_leaves_alone(
    db_url: str, tmp_path: Path
) -> None:
    """Another desktop in the middle of editing a customer the file does not change: the
    re-import neither waits for that edit nor locks the rows it leaves as they are."""
    rows = [[f"c{i}", f"Name {i}", f"{i}.25", "gold"] for i in range(300)]
    path = write_csv(tmp_path / "c.csv", ["external_id", "name", "monthly_revenue", "tier"], rows)
    # An import that waits for a row lock fails after a second instead of hanging the test.
    engine = make_engine(db_url, connect_args={"options": "-c lock_timeout=1000"})
    try:
        import_customers(engine, path, today=TODAY)
        with engine.connect() as editor, editor.begin():
            editor.exec_driver_sql(
                "UPDATE customers SET name = 'Being edited' WHERE external_id = 'c7'"
            )
            again = import_customers(engine, path, today=TODAY)
        assert (again.inserted, again.updated, again.unchanged) == (0, 0, 300)
        with engine.connect() as connection:
            # A row lock leaves the locker's id in xmax of the row it locked.
            locked = connection.exec_driver_sql(
                "SELECT count(*) FROM customers WHERE external_id <> 'c7' AND xmax <> '0'"
            ).scalar()
        assert locked == 0
        assert customers(engine)["c7"]["name"] == "Being edited"  # the edit, not the file
    finally:
        engine.dispose()


def test_status_change_through_import(engine: Engine, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "a.csv",
        ["external_id", "status", "churned_at"],
        [["c1", "churned", "2026-05-01T10:00:00Z"], ["c2", "active", ""]],
    )
    import_customers(engine, path, today=TODAY)
    path = write_csv(tmp_path / "b.csv", ["external_id", "Churn"], [["c1", "No"]])
    result = import_customers(engine, path, today=TODAY)
    assert result.updated == 1
    c1 = customers(engine)["c1"]
    assert (c1["status"], c1["churned_at"]) == ("active", None)  # reactivated: no churn date
    path = write_csv(tmp_path / "c.csv", ["Customer ID", "State"], [["c2", "Lost"]])
    result = import_customers(
        engine, path, mapping={"status": "State"}, churn_values=["lost"], today=TODAY
    )
    assert customers(engine)["c2"]["status"] == "churned"


def test_values_are_stored_verbatim(engine: Engine, tmp_path: Path) -> None:
    rows = [
        [f"v{i}", value, value, value.strip() or "x", "1.00", value]
        for i, value in enumerate(AWKWARD)
    ]
    path = write_csv(
        tmp_path / "awkward.csv", ["external_id", "name", "segment", "plan", "mrr", "note"], rows
    )
    result = import_customers(engine, path, today=TODAY)
    assert result.rejected == 0, result.errors
    stored = customers(engine)
    for i, value in enumerate(AWKWARD):
        row = stored[f"v{i}"]
        assert row["name"] == value
        assert row["segment"] == value
        assert attributes_of(row)["note"] == value


def test_a_wide_file_keeps_every_attribute_with_its_type(engine: Engine, tmp_path: Path) -> None:
    """150 extra columns: more than one SQL function call may take arguments on either database."""
    kinds = [
        ("int", ["7", "-12", ""]),
        ("num", ["1.50", "1e5", "-0.25"]),
        ("flag", ["TRUE", "false", ""]),
        ("text", ['say "hi"', "=HYPERLINK(1)", "0012"]),
        ("blank", ["", "", " "]),
    ]
    columns = [f"{name}{j}" for j in range(30) for name, _ in kinds]
    values = [[v for _ in range(30) for _, sample in kinds for v in [sample[i]]] for i in range(3)]
    rows = [[f"w{i}", *values[i]] for i in range(3)]
    path = write_csv(tmp_path / "wide.csv", ["external_id", *columns], rows)
    result = import_customers(engine, path, today=TODAY)
    assert result.rejected == 0, result.errors
    assert result.attribute_types["int29"] == "integer"
    assert result.attribute_types["num0"] == "number"
    assert result.attribute_types["flag3"] == "boolean"
    assert result.attribute_types["text7"] == "text"
    stored = customers(engine)
    expected = [
        {"int": 7, "num": 1.5, "flag": True, "text": 'say "hi"', "blank": None},
        {"int": -12, "num": 100000.0, "flag": False, "text": "=HYPERLINK(1)", "blank": None},
        {"int": None, "num": -0.25, "flag": None, "text": "0012", "blank": None},
    ]
    for i in range(3):
        attributes = attributes_of(stored[f"w{i}"])
        assert attributes == {
            f"{name}{j}": expected[i][name] for j in range(30) for name, _ in kinds
        }


def test_malformed_rows_are_reported_and_the_rest_imported(engine: Engine, tmp_path: Path) -> None:
    long_value = "x" * 100_000
    header = ["external_id", "name", "email", "signup_date", "monthly_revenue", "status", "memo"]
    rows = [
        ["ok1", "Fine", "fine@example.com", "2024-01-31", "12.50", "active", long_value],
        ["bad-email", "A", "not-an-email", "", "", "", ""],
        ["bad-date", "B", "", "31/01/2024", "", "", ""],
        ["future", "C", "", "2099-01-01", "", "", ""],
        ["negative", "D", "", "", "-5", "", ""],
        ["text-money", "E", "", "", "lots", "", ""],
        ["bad-status", "F", "", "", "", "maybe", ""],
        ["ok1", "Duplicate", "", "", "", "", ""],
        ["long-name", long_value, "", "", "", "", ""],
        ["", "No id", "", "", "", "", ""],
        ["ragged", "too", "few"],
        ["ragged2", "1", "2", "3", "4", "5", "6", "7", "8"],
        ["trailing", "Blank cells after", "", "", "", "", "", "", ""],
        ["ok2", "Also fine", "", "", "0", "yes", "42"],
    ]
    report = tmp_path / "errors.csv"
    result = import_customers(engine, write_csv(tmp_path / "m.csv", header, rows),
                              errors_out=report, today=TODAY)  # fmt: skip
    assert result.committed
    assert (result.rows, result.inserted, result.rejected) == (14, 3, 11)
    assert set(customers(engine)) == {"ok1", "ok2", "trailing"}
    assert attributes_of(customers(engine)["ok1"])["memo"] == long_value  # stored whole
    by_row = {e.row: e for e in result.errors}
    assert by_row[3].column == "email" and "not an e-mail" in by_row[3].reason
    assert "not a date" in by_row[4].reason
    assert "future" in by_row[5].reason
    assert "negative" in by_row[6].reason
    assert "not a number" in by_row[7].reason
    assert "not a status" in by_row[8].reason
    assert "already appeared on row 2" in by_row[9].reason
    assert "100,000 characters long; at most 200" in by_row[10].reason
    assert "required" in by_row[11].reason
    assert "3 fields but the header has 7" in by_row[12].reason
    assert "9 fields" in by_row[13].reason
    with report.open(encoding="utf-8", newline="") as handle:
        lines = list(csv.reader(handle))
    assert lines[0] == ["row", "line", "column", "value", "reason"]
    assert len(lines) == 1 + result.error_count
    long_line = next(line for line in lines if line[0] == "10")
    assert long_line[3].endswith("(100,000 characters)")  # the report stays readable


def test_all_or_nothing_writes_nothing(engine: Engine, tmp_path: Path) -> None:
    seed(engine, tmp_path)
    before = snapshot(engine)
    path = write_csv(
        tmp_path / "aon.csv",
        ["external_id", "email"],
        [["s1", "new@example.com"], ["n1", "ok@example.com"], ["n2", "broken"]],
    )
    report = tmp_path / "report.csv"
    with pytest.raises(ImportRejected, match="1 of 3 rows has errors") as info:
        import_customers(engine, path, all_or_nothing=True, errors_out=report, today=TODAY)
    assert snapshot(engine) == before
    assert not info.value.result.committed
    assert info.value.result.errors_path == report
    assert report.read_text(encoding="utf-8").count("\n") == 2


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "is empty"),
        (b"external_id,name\n", "has a header but no customer rows"),
        (b"\x00\x01\x02binary\x00" * 50, "binary data"),
        (b"name,email\nA,a@example.com\n", "No column holds the customer ID"),
        (b"external_id,name,name\nc1,a,b\n", "appears twice in the header"),
    ],
)
def test_files_that_cannot_be_imported_leave_the_database_alone(
    engine: Engine, tmp_path: Path, data: bytes, message: str
) -> None:
    seed(engine, tmp_path)
    before = snapshot(engine)
    report = tmp_path / "report.csv"
    path = tmp_path / "bad.csv"
    path.write_bytes(data)
    with pytest.raises(ValidationError, match=message):
        import_customers(engine, path, errors_out=report)
    assert snapshot(engine) == before
    assert not report.exists()
    assert not report.with_name("report.csv.part").exists()


def test_windows_1252_and_semicolons(engine: Engine, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "excel.csv",
        ["Kundennummer", "Name", "MRR"],
        [["k1", "Jürgen Müller", "12,50"], ["k2", "Zoë “Q”", "7"]],
        encoding="cp1252",
        delimiter=";",
    )
    result = import_customers(engine, path, mapping={"external_id": "Kundennummer"})
    assert (result.format.encoding, result.format.delimiter) == ("cp1252", ";")
    stored = customers(engine)
    assert stored["k1"]["name"] == "Jürgen Müller"
    assert stored["k1"]["monthly_revenue"] == 12.5
    assert stored["k2"]["name"] == "Zoë “Q”"


def test_cancel_leaves_the_database_unchanged(engine: Engine, tmp_path: Path) -> None:
    seed(engine, tmp_path)
    before = snapshot(engine)
    rows = [[f"c{i}", f"Name {i}"] for i in range(3000)]
    path = write_csv(tmp_path / "big.csv", ["external_id", "name"], rows)
    cancel = threading.Event()
    seen: list[str] = []

    def progress(fraction: float, message: str) -> None:
        seen.append(message)
        if message.startswith("Reading big.csv: 1,000 rows"):
            cancel.set()  # after rows were staged inside the transaction

    with pytest.raises(Cancelled):
        import_customers(engine, path, chunk_size=1000, progress=progress, cancel=cancel)
    assert snapshot(engine) == before
    assert any(m.startswith("Reading big.csv: 1,000") for m in seen)
    # The engine and its pooled connections are still usable afterwards.
    assert import_customers(engine, path, chunk_size=1000).inserted == 3000


@pytest.mark.postgres
def test_lost_connection_leaves_the_database_unchanged(tmp_path: Path) -> None:
    with pg.scratch_database() as name:
        url = pg.sqlalchemy_url(pg.database_dsn(name))
        from churndesk.db.migrate import upgrade

        engine = make_engine(url)
        try:
            upgrade(engine)
            seed(engine, tmp_path)
            before = snapshot(engine)
            rows = [[f"c{i}", f"Name {i}"] for i in range(3000)]
            path = write_csv(tmp_path / "big.csv", ["external_id", "name"], rows)

            def progress(fraction: float, message: str) -> None:
                if message.startswith("Reading big.csv: 1,000 rows"):
                    with psycopg.connect(pg.database_dsn(name), autocommit=True) as admin:
                        admin.execute(
                            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                        )

            with pytest.raises(DatabaseUnavailable, match="connection to the database was lost"):
                import_customers(engine, path, chunk_size=1000, progress=progress)
            assert snapshot(engine) == before
        finally:
            engine.dispose()


def test_the_import_runs_with_fewer_collector_passes(engine: Engine, tmp_path: Path) -> None:
    """Bulk reading keeps millions of objects alive: collector passes over them cost seconds."""
    path = write_csv(tmp_path / "c.csv", ["external_id", "name"], [["c1", "One"]])
    during: list[int] = []
    before = gc.get_threshold()
    import_customers(engine, path, progress=lambda f, m: during.append(gc.get_threshold()[0]))
    assert min(during) >= BULK_THRESHOLD
    assert gc.get_threshold() == before


def test_import_is_one_transaction_for_readers(engine: Engine, tmp_path: Path) -> None:
    """A reader in another connection sees nothing of an import until it commits."""
    rows = [[f"c{i}", f"Name {i}"] for i in range(2000)]
    path = write_csv(tmp_path / "big.csv", ["external_id", "name"], rows)
    counts: list[int] = []

    def progress(fraction: float, message: str) -> None:
        if message.startswith("Committing"):
            with engine.connect() as other:
                counts.append(int(other.execute(text("SELECT count(*) FROM customers")).scalar()))

    result = import_customers(engine, path, chunk_size=500, progress=progress)
    assert counts == [0]
    assert result.inserted == 2000


def index_names(engine: Engine) -> list[str]:
    query = (
        "SELECT indexname FROM pg_indexes WHERE tablename = 'customers'"
        if engine.dialect.name == "postgresql"
        else "SELECT name FROM sqlite_master WHERE tbl_name = 'customers' AND type = 'index'"
    )
    with engine.connect() as connection:
        return sorted(connection.exec_driver_sql(query).scalars())


def test_cancel_at_the_last_moment_restores_rows_and_indexes(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cancelled after the upsert (and SQLite's index rebuild), just before COMMIT."""
    from churndesk.services import import_writes

    monkeypatch.setattr(import_writes, "BULK_LOAD_MIN_ROWS", 1)  # take the bulk-load path
    seed(engine, tmp_path)
    before = snapshot(engine)
    indexes_before = index_names(engine)
    rows = [[f"c{i}", f"Name {i}", f"p{i % 7}"] for i in range(1500)]
    path = write_csv(tmp_path / "big.csv", ["external_id", "name", "plan"], rows)
    cancel = threading.Event()

    def progress(fraction: float, message: str) -> None:
        if message.startswith("Committing"):
            cancel.set()

    with pytest.raises(Cancelled):
        import_customers(engine, path, chunk_size=500, progress=progress, cancel=cancel)
    assert snapshot(engine) == before
    indexes_after = index_names(engine)
    assert indexes_after == indexes_before
    result = import_customers(engine, path, chunk_size=500)
    assert result.inserted == 1500
    with engine.connect() as connection:
        plans = connection.execute(
            text("SELECT count(*) FROM customers WHERE plan = 'p3'")
        ).scalar_one()
    assert plans == len([r for r in rows if r[2] == "p3"])
