"""The synthetic customer generator: determinism, validity, fidelity to IBM Telco, CSV output."""

from __future__ import annotations

import datetime as dt
import re
import threading
import unicodedata
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from threadpoolctl import threadpool_limits

from churndesk.errors import Cancelled, ValidationError
from churndesk.services import synthetic
from churndesk.services.synthetic import (
    ALL_COLUMNS,
    ATTRIBUTE_COLUMNS,
    CUSTOMER_FIELDS,
    DEFAULT_REFERENCE_DATE,
    OWNERS,
    PLANS,
    SEGMENTS,
    generate_customers,
    write_csv,
)

# Figures read off the real IBM Telco sample (../shared/data/telco_customer_churn.csv, 7,043
# rows); test_reference_figures_match_the_real_file re-derives them from the file.
REAL_CHURN_RATE = 0.2654
REAL_CONTRACT_MIX = {"Month-to-month": 0.5502, "One year": 0.2091, "Two year": 0.2407}
REAL_INTERNET_MIX = {"DSL": 0.3437, "Fiber optic": 0.4396, "No": 0.2167}
REAL_MEAN_TENURE = 32.37
REAL_MEAN_MONTHLY_CHARGES = 64.76
REAL_CHURN_BY_CONTRACT = {"Month-to-month": 0.427, "One year": 0.113, "Two year": 0.028}
REAL_CHURN_BY_INTERNET = {"DSL": 0.190, "Fiber optic": 0.419, "No": 0.074}

CATEGORICAL_ATTRIBUTES = [
    c for c in ATTRIBUTE_COLUMNS if c not in ("SeniorCitizen", "tenure", "TotalCharges")
]
EMAIL = re.compile(r"^[a-z0-9]+(?:[._][a-z0-9]+)*@[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}$")
N = 50_000
SEED = 20_240_601


def generate(n: int, seed: int = SEED, **kwargs: object) -> pd.DataFrame:
    return pd.concat(list(generate_customers(n, seed, **kwargs)))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def base() -> pd.DataFrame:
    return generate(N)


def churned(frame: pd.DataFrame) -> pd.Series:
    return frame["status"] == "churned"


# --- determinism ---------------------------------------------------------------------------------


def test_same_seed_gives_identical_frames():
    pd.testing.assert_frame_equal(generate(6_789), generate(6_789))


@pytest.fixture(scope="module")
def three_blocks() -> pd.DataFrame:
    return generate(2 * synthetic.BLOCK_SIZE + 3, chunk_size=4_096)


@pytest.mark.parametrize("chunk_size", [1, 999, 7_777, 10_000, 100_000])
def test_data_does_not_depend_on_chunk_size(chunk_size, three_blocks):
    n = len(three_blocks) if chunk_size > 1 else 97  # a frame per row is slow; few rows suffice
    chunks = list(generate_customers(n, SEED, chunk_size=chunk_size))
    assert all(len(c) == chunk_size for c in chunks[:-1])
    assert 0 < len(chunks[-1]) <= chunk_size
    pd.testing.assert_frame_equal(pd.concat(chunks), three_blocks.iloc[:n])
    pd.testing.assert_index_equal(pd.concat(chunks).index, pd.RangeIndex(n))


def test_a_smaller_base_is_a_prefix_of_a_larger_one():
    pd.testing.assert_frame_equal(generate(3_210), generate(12_000).iloc[:3_210])


def test_different_seeds_give_different_data():
    one, two = generate(5_000, seed=1), generate(5_000, seed=2)
    assert not set(one["external_id"]) & set(two["external_id"])
    assert (one["tenure"].to_numpy() != two["tenure"].to_numpy()).mean() > 0.5
    assert (one["name"].to_numpy() != two["name"].to_numpy()).mean() > 0.5


def test_reference_date_only_moves_the_dates():
    default = generate(4_000)
    pd.testing.assert_frame_equal(generate(4_000, reference_date=DEFAULT_REFERENCE_DATE), default)
    later = generate(4_000, reference_date=DEFAULT_REFERENCE_DATE + dt.timedelta(days=100))
    moving = ["signup_date", "churned_at"]
    pd.testing.assert_frame_equal(later.drop(columns=moving), default.drop(columns=moving))
    shift = pd.to_datetime(later["signup_date"]) - pd.to_datetime(default["signup_date"])
    assert (shift == pd.Timedelta(days=100)).all()


def test_generated_rows_are_fixed_for_a_seed():
    # Guards against accidental changes to the generator (which would change every demo).
    first = generate(3, seed=0).iloc[0]
    assert first["external_id"] == "8240-PDFRW"
    assert first["name"] == "Amy Thomas"
    assert first["tenure"] == 40


# --- shape and validity ------------------------------------------------------------------------


def test_columns_and_types(base):
    assert tuple(base.columns) == ALL_COLUMNS == CUSTOMER_FIELDS + ATTRIBUTE_COLUMNS
    assert len(base) == N
    for column in ("SeniorCitizen", "tenure"):
        assert base[column].dtype == np.int64
    for column in ("monthly_revenue", "TotalCharges"):
        assert base[column].dtype == np.float64
    assert set(base["SeniorCitizen"]) == {0, 1}
    assert base["tenure"].between(0, 72).all()
    assert {0, 1, 72} <= set(base["tenure"])


def test_external_ids_are_unique_and_telco_like(base):
    ids = base["external_id"]
    assert ids.is_unique
    assert ids.str.fullmatch(r"\d{4}-[A-Z]{5}").all()


def test_external_ids_are_unique_across_many_blocks():
    # Ids come from a keyed permutation of the row number, so no two rows can share one.
    rows = np.arange(0, 3_000_000, 11)
    digits, letters = synthetic._scramble(rows, 3)
    assert len(np.unique(digits * 26**5 + letters)) == len(rows)


def test_emails_are_valid_where_present(base):
    email = base["email"]
    missing = email.isna().mean()
    assert 0.03 <= missing <= 0.07
    present = email.dropna()
    assert present.map(lambda e: EMAIL.fullmatch(e) is not None).all()
    businesses = base["segment"] != "Residential"
    assert email[businesses].dropna().str.match(r"(info|office|contact|billing|admin|hello)").any()


def test_names_mix_cultures_and_scripts(base):
    names = base["name"]
    assert names.str.len().gt(1).all()
    assert (names.str.strip() == names).all()

    def has(pattern: str) -> int:
        return int(names.str.contains(pattern, regex=True).sum())

    assert has("[\u0600-\u06ff]") > 0  # Arabic (right to left)
    assert has("[\u0590-\u05ff]") > 0  # Hebrew (right to left)
    assert has("[\u4e00-\u9fff]") > 0  # CJK ideographs
    assert has("[\uac00-\ud7af]") > 0  # Hangul
    accented = names.map(
        lambda s: any(unicodedata.decomposition(c).startswith("00") for c in s if ord(c) > 127)
    )
    assert accented.mean() > 0.05
    assert names.map(str.isascii).mean() > 0.7
    assert names.nunique() > 10_000
    business_names = names[base["segment"] == "Small Business"]
    assert business_names.str.contains(",").any()  # must survive CSV quoting


def test_crm_columns(base):
    assert set(base["segment"]) == set(SEGMENTS)
    shares = base["segment"].value_counts(normalize=True)
    assert shares["Residential"] > 0.85
    assert 0.002 < shares["Enterprise"] < 0.03
    assert set(base["plan"]) == set(PLANS)
    internet = base["InternetService"]
    assert ((base["plan"] == "Phone Only") == (internet == "No")).all()
    assert base["plan"][internet == "DSL"].str.startswith("DSL ").all()
    assert base["plan"][internet == "Fiber optic"].str.startswith("Fiber ").all()
    countries = base["country"].value_counts(normalize=True)
    assert 0.85 < countries["US"] < 0.95
    assert len(countries) > 15
    assert base["country"].str.fullmatch(r"[A-Z]{2}").all()
    assert set(base["owner"].dropna()) == set(OWNERS)
    assert 0.05 < base["owner"].notna().mean() < 0.4
    assert set(base["status"]) == {"active", "churned"}


def test_dates_follow_tenure_and_churn(base):
    reference = pd.Timestamp(DEFAULT_REFERENCE_DATE)
    is_churned = churned(base)
    assert (base["churned_at"].notna() == is_churned).all()
    stamps = pd.to_datetime(base["churned_at"], format="%Y-%m-%dT%H:%M:%SZ", utc=True)
    stamps = stamps.dt.tz_localize(None)[is_churned]
    assert (stamps < reference).all()
    assert (stamps >= reference - pd.Timedelta(days=90)).all()
    signup = pd.to_datetime(base["signup_date"], format="%Y-%m-%d")
    anchor = pd.Series(reference, index=base.index).where(~is_churned, stamps.dt.normalize())
    months = (anchor - signup).dt.days / (365.25 / 12)
    assert (months >= base["tenure"] - 0.01).all()
    assert (months < base["tenure"] + 1.05).all()


def test_money_columns(base):
    revenue = base["monthly_revenue"]
    assert np.allclose(revenue * 100, np.rint(revenue * 100))
    assert revenue.between(15, 125).all()
    total = base["TotalCharges"]
    assert (total.isna() == (base["tenure"] == 0)).all()  # blank iff tenure is 0
    one_month = base["tenure"] == 1
    assert (total[one_month] == revenue[one_month]).all()
    ratio = (total / (base["tenure"] * revenue)).dropna()
    assert abs(ratio.median() - 1) < 0.01
    assert ratio.between(0.5, 1.5).all()


def test_vocabularies_match_the_real_file(base, telco_csv):
    real = pd.read_csv(telco_csv)
    assert set(ATTRIBUTE_COLUMNS) < set(real.columns)
    for column in CATEGORICAL_ATTRIBUTES:
        assert set(base[column]) == set(real[column]), column


# --- fidelity to the real sample ---------------------------------------------------------------


def test_reference_figures_match_the_real_file(telco_csv):
    real = pd.read_csv(telco_csv)
    is_churned = real["Churn"] == "Yes"
    assert is_churned.mean() == pytest.approx(REAL_CHURN_RATE, abs=1e-4)
    assert real["tenure"].mean() == pytest.approx(REAL_MEAN_TENURE, abs=0.01)
    assert real["MonthlyCharges"].mean() == pytest.approx(REAL_MEAN_MONTHLY_CHARGES, abs=0.01)
    mix = real["Contract"].value_counts(normalize=True)
    for key, share in REAL_CONTRACT_MIX.items():
        assert mix[key] == pytest.approx(share, abs=1e-4)
    mix = real["InternetService"].value_counts(normalize=True)
    for key, share in REAL_INTERNET_MIX.items():
        assert mix[key] == pytest.approx(share, abs=1e-4)
    for column, figures in (
        ("Contract", REAL_CHURN_BY_CONTRACT),
        ("InternetService", REAL_CHURN_BY_INTERNET),
    ):
        rates = is_churned.groupby(real[column]).mean()
        for key, rate in figures.items():
            assert rates[key] == pytest.approx(rate, abs=1e-3)


def test_churn_rate(base):
    assert churned(base).mean() == pytest.approx(REAL_CHURN_RATE, abs=0.02)


def test_contract_and_internet_mix(base):
    for column, real in (("Contract", REAL_CONTRACT_MIX), ("InternetService", REAL_INTERNET_MIX)):
        mix = base[column].value_counts(normalize=True)
        for key, share in real.items():
            assert mix[key] == pytest.approx(share, abs=0.02), (column, key)


def test_means_of_tenure_and_monthly_charges(base):
    assert base["tenure"].mean() == pytest.approx(REAL_MEAN_TENURE, abs=1.0)
    assert base["monthly_revenue"].mean() == pytest.approx(REAL_MEAN_MONTHLY_CHARGES, abs=1.0)


def test_churn_by_contract_and_internet(base):
    by_contract = churned(base).groupby(base["Contract"]).mean()
    assert by_contract["Month-to-month"] > 2.5 * by_contract["One year"]
    assert by_contract["One year"] > 2 * by_contract["Two year"]
    by_internet = churned(base).groupby(base["InternetService"]).mean()
    assert by_internet["Fiber optic"] > by_internet["DSL"] + 0.15
    assert by_internet["DSL"] > by_internet["No"]
    for key, rate in {**REAL_CHURN_BY_CONTRACT, **REAL_CHURN_BY_INTERNET}.items():
        observed = by_contract.get(key, by_internet.get(key))
        assert observed == pytest.approx(rate, abs=0.03), key


def test_tenure_depends_on_contract(base):
    by_contract = base.groupby("Contract")["tenure"].mean()
    # Real sample: 18.0 / 42.0 / 56.7 months.
    assert by_contract["Month-to-month"] == pytest.approx(18.0, abs=2)
    assert by_contract["One year"] == pytest.approx(42.0, abs=2)
    assert by_contract["Two year"] == pytest.approx(56.7, abs=2)


def test_churn_is_learnable_like_the_real_data(base):
    sample = base.iloc[:20_000]
    features = sample[list(ATTRIBUTE_COLUMNS)].assign(
        TotalCharges=sample["TotalCharges"].fillna(0.0)
    )
    model = make_pipeline(
        ColumnTransformer(
            [
                ("categorical", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL_ATTRIBUTES),
                ("numeric", StandardScaler(), ["SeniorCitizen", "tenure", "TotalCharges"]),
            ]
        ),
        LogisticRegression(max_iter=1_000),
    )
    folds = StratifiedKFold(n_splits=3, shuffle=True, random_state=0)
    # One BLAS thread: on a busy machine, oversubscribed BLAS threads make this much slower.
    with threadpool_limits(limits=1):
        auc = cross_val_score(model, features, churned(sample), cv=folds, scoring="roc_auc").mean()
    assert 0.80 <= auc <= 0.90  # the real sample: 0.845


# --- CSV -----------------------------------------------------------------------------------------


def test_write_csv_round_trip(tmp_path: Path):
    path = tmp_path / "customers.csv"
    fractions: list[float] = []
    rows = write_csv(path, 12_345, 7, progress=lambda f, _text: fractions.append(f))
    assert rows == 12_345
    raw = path.read_bytes()
    assert raw.startswith(b"external_id,name,email,")
    assert b"\r" not in raw
    assert raw.count(b"\n") == rows + 1
    back = pd.read_csv(path, encoding="utf-8")
    pd.testing.assert_frame_equal(back, generate(12_345, seed=7).reset_index(drop=True))
    assert fractions == sorted(fractions)
    assert fractions[-1] == 1.0
    assert not list(tmp_path.glob("*.part"))


def test_write_csv_of_no_customers_writes_the_header(tmp_path: Path):
    path = tmp_path / "empty.csv"
    assert write_csv(path, 0) == 0
    assert path.read_text(encoding="utf-8") == ",".join(ALL_COLUMNS) + "\n"
    assert list(generate_customers(0)) == []


def test_cancelled_write_removes_the_partial_file(tmp_path: Path):
    path = tmp_path / "customers.csv"
    cancel = threading.Event()

    def progress(fraction: float, _text: str) -> None:
        if fraction > 0:
            cancel.set()

    with pytest.raises(Cancelled):
        write_csv(path, 50_000, progress=progress, cancel=cancel)
    assert cancel.is_set()
    assert list(tmp_path.iterdir()) == []


def test_cancelled_generation_stops():
    cancel = threading.Event()
    chunks = generate_customers(30_000, chunk_size=10_000, cancel=cancel)
    assert len(next(chunks)) == 10_000
    cancel.set()
    with pytest.raises(Cancelled):
        next(chunks)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n": -1},
        {"n": 2.5},
        {"n": True},
        {"n": synthetic.MAX_CUSTOMERS + 1},
        {"n": 10, "seed": -1},
        {"n": 10, "chunk_size": 0},
    ],
)
def test_bad_arguments_are_rejected_at_once(kwargs, tmp_path: Path):
    with pytest.raises(ValidationError):
        generate_customers(**kwargs)
    if "chunk_size" not in kwargs:
        with pytest.raises(ValidationError):
            write_csv(tmp_path / "x.csv", **kwargs)
        assert list(tmp_path.iterdir()) == []
