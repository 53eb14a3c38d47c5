"""Feature schema, model matrix, evaluation maths and scoring maths (no training, no Qt)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from churndesk.errors import ValidationError
from churndesk.ml.evaluate import (
    CostInputs,
    Evaluation,
    choose_threshold_cost,
    choose_threshold_f1,
    evaluate,
)
from churndesk.ml.features import (
    MISSING,
    OTHER,
    FeatureSchema,
    build_features,
    check_training_data,
    infer_schema,
    label_from,
)
from churndesk.ml.scoring_math import band, risk_score

REPO = Path(__file__).resolve().parents[2]
TELCO_CSV = REPO.parent / "shared" / "data" / "telco_customer_churn.csv"
STANDARD_EMPTY = ("name", "email", "segment", "plan", "country", "owner")


def telco_frame() -> pd.DataFrame:
    """The Telco CSV shaped like the service layer's customer frame."""
    raw = pd.read_csv(TELCO_CSV)
    frame = raw.rename(
        columns={
            "customerID": "external_id",
            "MonthlyCharges": "monthly_revenue",
            "Churn": "status",
        }
    )
    frame["status"] = frame["status"].map({"Yes": "churned", "No": "active"})
    for column in STANDARD_EMPTY:
        frame[column] = None
    frame["signup_date"] = pd.NaT
    frame["churned_at"] = pd.NaT
    frame["created_at"] = pd.Timestamp("2024-05-01")
    return frame


def small_frame(n: int = 600, seed: int = 1) -> pd.DataFrame:
    """A customer frame with awkward attribute columns: text numbers, bools, dates, ids."""
    rng = np.random.default_rng(seed)
    churned = rng.random(n) < 0.3
    ref = pd.Timestamp("2024-03-31")
    usage = rng.normal(10, 3, n).round(1).astype(str).astype(object)
    usage[rng.random(n) < 0.05] = " "
    return pd.DataFrame(
        {
            "external_id": [f"C{i}" for i in range(n)],
            "name": [f"n{i}" for i in range(n)],
            "email": None,
            "segment": rng.choice(["a", "b"], n),
            "plan": None,
            "country": None,
            "signup_date": ref - pd.to_timedelta(rng.integers(0, 2000, n), unit="D"),
            "monthly_revenue": rng.gamma(2.0, 20.0, n),
            "status": np.where(churned, "churned", "active"),
            "churned_at": pd.Series(pd.NaT, index=range(n)).mask(pd.Series(churned), ref),
            "owner": None,
            "created_at": pd.Timestamp("2024-04-02"),
            "usage_hours": usage,
            "auto_renew": rng.choice(np.array([True, False, None], dtype=object), n),
            "last_ticket": (ref - pd.to_timedelta(rng.integers(0, 90, n), unit="D")).strftime(
                "%Y-%m-%d"
            ),
            "store": [f"s{k}" for k in rng.zipf(1.5, n) % 300],
            "serial": np.arange(10_000, 10_000 + n),
            "notes": [f"free text {i}" for i in range(n)],
            "blank": None,
            "constant": "x",
            "risk_score": rng.random(n),
        }
    )


# --------------------------------------------------------------------------- schema inference


def test_telco_schema_keeps_attributes_and_total_charges_blank_becomes_missing():
    frame = telco_frame()
    schema = infer_schema(frame)
    matrix = build_features(frame, schema)

    assert len(matrix) == 7043
    assert int(matrix["TotalCharges"].isna().sum()) == 11
    names = set(schema.feature_names)
    assert {"tenure", "Contract", "monthly_revenue", "TotalCharges", "SeniorCitizen"} <= names
    assert not names & {"external_id", "status", "churned_at", "created_at", "owner"}
    assert {s.name for s in schema.categorical} >= {"Contract", "PaymentMethod", "gender"}


def test_awkward_columns_are_typed_derived_or_excluded():
    schema = infer_schema(small_frame())
    by_name = {f.name: f for f in schema.features}
    excluded = dict(schema.excluded)

    assert by_name["usage_hours"].transform == "number"
    assert by_name["auto_renew"].transform == "bool"
    assert by_name["last_ticket_days_before_reference"].sources == ("last_ticket",)
    assert by_name["tenure_months"].sources == ("signup_date",)
    assert by_name["revenue_per_tenure_month"].sources == ("monthly_revenue", "signup_date")
    assert by_name["tenure_bucket"].kind == "categorical"
    assert 0 < len(by_name["store"].levels) <= 30
    assert schema.reference_date == "2024-03-31"
    for column in ("serial", "notes", "blank", "constant", "risk_score", "external_id", "email"):
        assert column in excluded, column


def test_leaky_columns_are_excluded_by_name_and_by_separation():
    frame = small_frame()
    churned = frame["status"] == "churned"
    frame["churn_reason"] = np.where(churned, "price", None)
    frame["Cancellation"] = np.where(churned, "yes", "no")  # a perfect proxy, no "churn" in it
    frame["days_to_cancel"] = np.where(churned, 3.0, np.nan)
    schema = infer_schema(frame)
    excluded = dict(schema.excluded)

    for column in ("churn_reason", "Cancellation", "days_to_cancel", "status", "churned_at"):
        assert column in excluded, column
        assert column not in schema.source_columns
    assert "would leak" in excluded["churn_reason"]
    assert "alone separates" in excluded["Cancellation"]


def test_schema_does_not_depend_on_column_order_and_round_trips_through_json():
    frame = small_frame()
    schema = infer_schema(frame)
    shuffled = frame[list(reversed(frame.columns))]

    assert infer_schema(shuffled) == schema
    restored = FeatureSchema.from_dict(json.loads(json.dumps(schema.to_dict())))
    assert restored == schema
    assert restored.fingerprint() == schema.fingerprint()


def test_model_matrix_is_deterministic_and_maps_unseen_values_to_other():
    frame = small_frame()
    schema = infer_schema(frame)
    scoring = frame.head(5).copy()
    scoring["segment"] = ["a", "zzz-new", None, " ", "b"]
    scoring["usage_hours"] = ["3.5", "", None, "abc", 7]

    first = build_features(scoring, schema)
    second = build_features(scoring[list(reversed(scoring.columns))], schema)

    pd.testing.assert_frame_equal(first, second)
    assert tuple(first.columns) == schema.feature_names
    assert list(first["segment"].astype(str)) == ["a", OTHER, MISSING, MISSING, "b"]
    assert first["usage_hours"].tolist()[0] == 3.5
    assert np.isnan(first["usage_hours"].tolist()[1:4]).all()
    assert first["usage_hours"].tolist()[4] == 7.0


def test_missing_columns_are_named_in_the_error():
    frame = small_frame()
    schema = infer_schema(frame)
    with pytest.raises(ValidationError, match="lacks columns this model needs") as e:
        build_features(frame.drop(columns=["usage_hours", "signup_date"]), schema)
    assert set(e.value.field_errors) == {"usage_hours", "signup_date"}
    assert "usage_hours" in e.value.user_message
    assert "signup_date" in e.value.user_message


def test_all_nan_and_empty_frames_give_a_clear_error():
    frame = small_frame().head(50)
    useless = frame[["external_id", "name", "status", "blank", "constant"]]
    with pytest.raises(ValidationError, match="None of the customer columns"):
        infer_schema(useless)


# --------------------------------------------------------------------------- labels


def test_label_from_status_and_unknown_status_rejected():
    frame = pd.DataFrame({"status": ["active", "churned", " Churned ", "active"]})
    assert label_from(frame).tolist() == [0, 1, 1, 0]
    with pytest.raises(ValidationError, match="other than 'active' or 'churned'"):
        label_from(pd.DataFrame({"status": ["active", "paused"]}))


def test_check_training_data_needs_400_labelled_customers():
    with pytest.raises(ValidationError, match="at least 400 customers") as e:
        check_training_data(np.array([0, 1] * 199))
    assert "398" in e.value.user_message
    with pytest.raises(ValidationError, match=r"must be 1 \(churned\) or 0"):
        check_training_data(np.array([0.0, 1.0, np.nan] * 200))


def test_check_training_data_needs_100_of_each_class():
    with pytest.raises(ValidationError, match="at least 100 churned and 100 active") as e:
        check_training_data(np.array([1] * 99 + [0] * 900))
    assert "99 churned" in e.value.user_message
    check_training_data(np.array([1] * 100 + [0] * 300))


# --------------------------------------------------------------------------- evaluation maths


def test_evaluation_is_json_serialisable_and_round_trips():
    rng = np.random.default_rng(0)
    y = (rng.random(1000) < 0.3).astype(np.int8)
    p = np.clip(0.3 + 0.4 * (y - 0.3) + rng.normal(0, 0.2, 1000), 0, 1)
    revenue = rng.gamma(2, 30, 1000)
    result = evaluate(y, p, fold_roc_auc=(0.8, 0.82), revenue=revenue, rule="cost")

    text = json.dumps(result.to_dict(), allow_nan=False)
    again = Evaluation.from_dict(json.loads(text))
    assert again == result
    assert result.threshold == result.threshold_cost.threshold
    assert sum(result.confusion.values()) == 1000
    assert result.deciles[-1]["cumulative_gain"] == pytest.approx(1.0)
    assert len(result.roc_points) <= 101
    assert sum(b["count"] for b in result.calibration) == 1000


def test_f1_threshold_on_a_hand_example():
    y = np.array([1, 1, 0, 1, 0, 0])
    p = np.array([0.9, 0.8, 0.7, 0.6, 0.2, 0.1])
    choice = choose_threshold_f1(y, p)
    # Flagging the top 4 gives precision 3/4, recall 1: F1 6/7, the best cut.
    assert choice.threshold == 0.6
    assert choice.f1 == pytest.approx(6 / 7)
    assert choice.flagged == 4


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from([0.1, 0.3, 0.5, 0.7, 0.9]), st.booleans(), st.floats(0, 500)),
        min_size=1,
        max_size=40,
    )
)
def test_cost_threshold_matches_brute_force(rows):
    p = np.array([r[0] for r in rows])
    y = np.array([int(r[1]) for r in rows])
    revenue = np.array([r[2] for r in rows])
    cost = CostInputs(offer_cost=25.0, success_rate=0.4, horizon_months=6.0)
    choice, _ = choose_threshold_cost(y, p, revenue, cost)

    def value(t: float) -> float:
        flagged = p >= t
        return float(np.sum(flagged * (y * 0.4 * revenue * 6.0 - 25.0)))

    best = max([0.0, *(value(t) for t in np.unique(p))])
    assert (choice.expected_value or 0.0) == pytest.approx(best, abs=1e-6)
    assert value(choice.threshold) == pytest.approx(best, abs=1e-6) or best == 0.0


# --------------------------------------------------------------------------- scoring maths


def test_risk_score_and_band_boundaries():
    scores = risk_score(np.array([0.0, 0.3994, 0.4, 0.5999, 0.6, 0.79, 0.8, 1.0, np.nan]))
    assert scores[:8].tolist() == [0.0, 39.9, 40.0, 60.0, 60.0, 79.0, 80.0, 100.0]
    assert band(scores).tolist() == [
        "low",
        "low",
        "medium",
        "high",
        "high",
        "high",
        "critical",
        "critical",
        None,
    ]
    assert band([10, 50], cutoffs=(20,), names=("calm", "alarm")).tolist() == ["calm", "alarm"]
    with pytest.raises(ValidationError, match="strictly increasing"):
        band([1.0], cutoffs=(60, 40, 80))


def test_importing_ml_keeps_qt_out_and_stays_light():
    code = (
        "import sys; import churndesk.ml; light = 'sklearn' not in sys.modules; "
        "import churndesk.ml.features, churndesk.ml.train, churndesk.ml.evaluate, "
        "churndesk.ml.scoring_math, churndesk.ml.explain, churndesk.ml.artifacts; "
        "print(light, 'PySide6' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["True", "False"]
