"""Date features are measured when a churned customer left, so they cannot reveal who left."""

from __future__ import annotations

import numpy as np
import pandas as pd

from churndesk.ml import features, train


def _frame(n: int = 3000, seed: int = 3) -> pd.DataFrame:
    """Churn that depends on nothing, and a stored tenure frozen at churn, as CRMs keep it.

    Everyone's tenure comes from one distribution; churned customers left 1 to 300 days before
    the reference date. Measured at the reference date, their signup-based tenure would be
    longer than the stored one by exactly that gap, which is what a leak looks like.
    """
    rng = np.random.default_rng(seed)
    reference = pd.Timestamp("2026-10-01")
    churned = rng.random(n) < 0.3
    tenure_days = rng.integers(30, 2000, n)
    since_left = np.where(churned, rng.integers(1, 300, n), 0)
    left = reference - pd.to_timedelta(since_left, unit="D")
    signup = left - pd.to_timedelta(tenure_days, unit="D")
    return pd.DataFrame(
        {
            "external_id": [f"C{i}" for i in range(n)],
            "signup_date": signup,
            "monthly_revenue": rng.uniform(20, 120, n).round(2),
            "status": np.where(churned, "churned", "active"),
            "churned_at": pd.Series(left).where(churned).dt.tz_localize("UTC"),
            "tenure": (tenure_days / 30.4375).round(),
            "region": rng.choice(["north", "south", "east"], n),
        }
    )


def test_signup_tenure_of_churned_customers_stops_at_their_churn_date() -> None:
    frame = _frame()
    schema = features.infer_schema(frame, reference_date="2026-10-01")
    matrix = features.build_features(frame, schema)
    derived = [f.name for f in schema.features if f.transform == "tenure_months"]
    assert derived, "the signup date should give a tenure feature"
    # Measured at the right moment, signup-based tenure agrees with the stored tenure for
    # churned and active customers alike, instead of running on after the churn date.
    gap = (matrix[derived[0]] - frame["tenure"]).abs()
    assert gap.max() < 1.5


def test_a_label_that_depends_on_nothing_is_not_learned_from_dates() -> None:
    frame = _frame()
    schema = features.infer_schema(frame)
    matrix = features.build_features(frame, schema)
    model = train.train(
        matrix,
        features.label_from(frame),
        {"algorithm": "hgb", "folds": 3, "hgb_max_iter": 60, "importance_repeats": 1},
        schema=schema,
        threads=1,
    )
    # Before measuring churned customers at their churn date this reached about 0.97.
    assert model.evaluation.roc_auc < 0.62
