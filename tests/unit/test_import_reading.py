"""CSV reading for the import: encodings, delimiters, binaries, mapping and type inference."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import pytest

from churndesk.errors import ValidationError
from churndesk.services.csv_sniff import CsvReader, detect_format, sniff_delimiter
from churndesk.services.customer_fields import (
    FieldError,
    parse_date,
    parse_money,
    parse_status,
    parse_timestamp,
    status_reader,
)
from churndesk.services.import_plan import AttributeColumn
from churndesk.services.importing import (
    automatic_mapping,
    parse_mapping,
    preview_import,
)

TELCO_HEADER = [
    "customerID", "gender", "SeniorCitizen", "Partner", "Dependents", "tenure", "PhoneService",
    "MultipleLines", "InternetService", "OnlineSecurity", "OnlineBackup", "DeviceProtection",
    "TechSupport", "StreamingTV", "StreamingMovies", "Contract", "PaperlessBilling",
    "PaymentMethod", "MonthlyCharges", "TotalCharges", "Churn",
]  # fmt: skip


def write(tmp_path: Path, data: bytes, name: str = "in.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_utf8_with_and_without_bom(tmp_path: Path) -> None:
    text = "external_id,name\nc1,Zoë 😀\n"
    assert detect_format(write(tmp_path, text.encode())).encoding == "utf-8"
    bom = write(tmp_path, b"\xef\xbb\xbf" + text.encode(), "bom.csv")
    fmt = detect_format(bom)
    assert fmt.encoding == "utf-8-sig"
    with CsvReader(bom, fmt) as reader:
        assert reader.read_header() == ["external_id", "name"]  # no BOM in the first name


def test_cp1252_fallback_even_when_the_odd_byte_is_far_down(tmp_path: Path) -> None:
    rows = "".join(f"c{i},plain ascii\n" for i in range(20_000))
    data = ("external_id,name\n" + rows + "c-last,Müller – “quoted”\n").encode("cp1252")
    path = write(tmp_path, data)
    fmt = detect_format(path)
    assert fmt.encoding == "cp1252"
    with CsvReader(path, fmt) as reader:
        reader.read_header()
        records = [r for chunk in reader.chunks(50_000) for r in chunk.records]
    assert records[-1] == ["c-last", "Müller – “quoted”"]


def test_utf16_with_bom_is_read(tmp_path: Path) -> None:
    path = write(tmp_path, "external_id\tname\nc1\tÅsa\n".encode("utf-16"))
    fmt = detect_format(path)
    assert (fmt.encoding, fmt.delimiter) == ("utf-16", "\t")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "is empty"),
        (b"  \r\n\r\n", "is empty"),
        (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, "PNG image"),
        (b"PK\x03\x04" + b"\x00" * 100, "Excel workbook"),
        (b"id,name\n" + bytes(range(256)) * 8, "binary data"),
        (b"external_id,name\nc1,caf\xe9 \x81\n", "neither UTF-8 nor Windows-1252"),
    ],
)
def test_unreadable_files_get_a_clear_message(tmp_path: Path, data: bytes, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        detect_format(write(tmp_path, data))


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="does not exist"):
        detect_format(tmp_path / "nope.csv")
    with pytest.raises(ValidationError, match="folder"):
        detect_format(tmp_path)


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_delimiter_is_sniffed_despite_quoted_delimiters(delimiter: str) -> None:
    d = delimiter
    sample = (
        f"external_id{d}name{d}note\n"
        f'c1{d}"Smith, Jane; Jr.|x"{d}a\n'
        f'c2{d}"Doe{d} John"{d}"line\nbreak"\n'
        f"c3{d}Plain{d}b\n"
    )
    assert sniff_delimiter(sample) == delimiter


def test_quoted_newlines_and_line_numbers(tmp_path: Path) -> None:
    path = write(tmp_path, b'id,note\n1,"two\nlines"\n\n2,x\n')
    fmt = detect_format(path)
    with CsvReader(path, fmt) as reader:
        reader.read_header()
        (chunk,) = list(reader.chunks(10))
    assert chunk.records == [["1", "two\nlines"], ["2", "x"]]
    assert chunk.end_lines == [3, 5]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 100])
def test_chunks_are_full_and_know_every_record_line(tmp_path: Path, size: int) -> None:
    """Blank lines and line breaks inside quotes (\\n, \\r\\n, a lone \\r) in every position
    of a chunk: each chunk but the last holds ``size`` records, and each record's last line is
    the one the csv module reports after reading it."""
    lines = [b"id,note\r\n"]
    for i in range(40):
        note = [b"plain", b'"a\nb"', b'"c\r\nd\r\ne"', b'"f\rg"', b'"\n"'][i % 5]
        lines.append(b"%d,%s\r\n" % (i, note))
        if i % 6 == 0:
            lines.append(b"\r\n" * (1 + i % 4))  # blank lines between records
    path = write(tmp_path, b"".join(lines))
    fmt = detect_format(path)

    expected: list[tuple[list[str], int]] = []
    with path.open(encoding="utf-8", newline="") as handle:
        reference = csv.reader(handle)
        next(reference)
        for record in reference:
            if record:
                expected.append((record, reference.line_num))

    with CsvReader(path, fmt) as reader:
        reader.read_header()
        chunks = list(reader.chunks(size))
    assert [len(c.records) for c in chunks[:-1]] == [size] * (len(chunks) - 1)
    assert [c.first_index for c in chunks] == list(range(0, 40, size))
    got = [(r, end) for c in chunks for r, end in zip(c.records, c.end_lines, strict=True)]
    assert got == expected
    assert [r[1] for r, _ in got][:5] == ["plain", "a\nb", "c\r\nd\r\ne", "f\rg", "\n"]


def test_overlong_field_from_a_missing_quote_is_a_clear_error(tmp_path: Path) -> None:
    path = write(tmp_path, b'id,note\n1,"never closed\n' + b"x" * 200_000 + b"\n")
    fmt = detect_format(path)
    with CsvReader(path, fmt) as reader:
        reader.read_header()
        with pytest.raises(ValidationError, match="missing its closing quote"):
            list(reader.chunks(10))


def test_automatic_mapping_for_known_layouts() -> None:
    assert automatic_mapping(TELCO_HEADER) == {
        "external_id": "customerID",
        "monthly_revenue": "MonthlyCharges",
        "status": "Churn",
    }
    own = ["external_id", "name", "email", "status", "churned_at", "owner", "Churn"]
    mapping = automatic_mapping(own)
    assert mapping["status"] == "status"  # the exact field name wins over the synonym
    assert "Churn" not in mapping.values()
    loose = automatic_mapping(["Customer ID", "E-mail Address", "MRR", "Signup"])
    assert loose == {
        "external_id": "Customer ID",
        "email": "E-mail Address",
        "monthly_revenue": "MRR",
        "signup_date": "Signup",
    }


def test_parse_mapping() -> None:
    assert parse_mapping(["external_id=Cust No", "status="]) == {
        "external_id": "Cust No",
        "status": "",
    }
    with pytest.raises(ValidationError, match="not FIELD=COLUMN"):
        parse_mapping(["external_id"])
    with pytest.raises(ValidationError, match="'phone' is not a customer field"):
        parse_mapping(["phone=Tel"])


def test_preview_reports_mapping_problems(tmp_path: Path) -> None:
    path = write(tmp_path, b"Number,Full Name,Revenue\n7,Ann,10\n")
    preview = preview_import(path)
    assert preview.mapping == {"name": "Full Name"}
    assert preview.layout == "custom"
    assert any("customer ID" in p for p in preview.problems)
    fixed = preview_import(path, mapping={"external_id": "number", "monthly_revenue": "Revenue"})
    assert fixed.problems == ()
    assert fixed.mapping["external_id"] == "Number"
    assert fixed.attributes == ()
    assert fixed.rows == (("7", "Ann", "10"),)
    bad = preview_import(path, mapping={"external_id": "Nope"})
    assert any("no column 'Nope'" in p for p in bad.problems)


def column_type(*chunks: set[str]) -> str:
    column = AttributeColumn(key="x", index=0, staged="a0")
    for values in chunks:
        column.observe(values)
    return column.type


def test_attribute_types_are_inferred_per_column_over_all_chunks() -> None:
    assert column_type({"1", "-2", "0"}) == "integer"
    assert column_type({"1", "2.5"}, {"3e10"}) == "number"
    assert column_type({"1", "2"}, {"0012"}) == "text"  # an id-like value keeps the column text
    assert column_type({"12"}, {"abc"}) == "text"
    assert column_type({"TRUE", "false"}) == "boolean"
    assert column_type({"Yes", "No"}) == "text"
    assert column_type(set()) == "empty"
    assert column_type({"1\n2"}) == "text"  # one value holding a newline is not two numbers
    assert column_type({"1234567890123456"}) == "text"  # 16 digits: an id, not a number
    assert column_type({"NaN"}) == "text"
    assert column_type({"1e999"}) == "text"


def test_field_parsers() -> None:
    today = dt.date(2026, 1, 10)
    assert parse_date("2024-02-29", today=today) == dt.date(2024, 2, 29)
    assert parse_date("2026-01-11", today=today) == dt.date(2026, 1, 11)  # a day ahead is fine
    for bad, reason in [
        ("2026-01-12", "future"),
        ("1899-12-31", "before 1900"),
        ("31/12/2024", "not a date"),
    ]:
        with pytest.raises(FieldError, match=reason):
            parse_date(bad, today=today)
    stamp = parse_timestamp("2025-03-01T10:00:00+02:00", today=today)
    assert stamp == dt.datetime(2025, 3, 1, 8, tzinfo=dt.UTC)
    assert parse_timestamp("2025-03-01 10:00", today=today).tzinfo == dt.UTC
    assert parse_money(" 12.345 ") == 12.35
    assert parse_money("12,5", decimal_comma=True) == 12.5
    for bad in ("-1", "nan", "inf", "1e12", "ten"):
        with pytest.raises(FieldError):
            parse_money(bad)
    churned, active = status_reader(None)
    assert parse_status("Yes", churned, active) == "churned"
    assert parse_status(" no ", churned, active) == "active"
    with pytest.raises(FieldError, match="--churn-value"):
        parse_status("churend", churned, active)
    churned, active = status_reader(["Lost"])
    assert parse_status("lost", churned, active) == "churned"
    assert parse_status("anything", churned, active) == "active"
