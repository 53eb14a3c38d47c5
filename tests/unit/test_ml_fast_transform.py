"""Encoding categorical features from pandas' codes gives exactly scikit-learn's result."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder

from churndesk.ml import fast_transform
from churndesk.ml.features import build_features
from churndesk.ml.train import train
from tests.unit.test_ml_models import telco_frame

FAST = {"folds": 3, "hgb_max_iter": 40, "importance_repeats": 1}


@pytest.fixture(scope="module")
def telco_matrix():
    from churndesk.ml.features import infer_schema, label_from

    frame = telco_frame()
    schema = infer_schema(frame)
    return build_features(frame, schema), label_from(frame)


@pytest.mark.parametrize("algorithm", ["logreg", "hgb"])
def test_probabilities_equal_scikit_learns(telco_matrix, algorithm: str) -> None:
    X, y = telco_matrix
    model = train(X, y, {**FAST, "algorithm": algorithm})
    prep = model.estimator.steps[0][1]
    fast = fast_transform.transform(prep, X)
    assert fast is not None, "the pipelines churndesk trains must take the fast path"
    np.testing.assert_array_equal(fast, prep.transform(X))
    np.testing.assert_array_equal(
        fast_transform.predict_proba(model.estimator, X), model.estimator.predict_proba(X)
    )


def _categorical(values: list[str | None], levels: list[str]) -> pd.Series:
    return pd.Series(pd.Categorical(values, categories=levels))


def test_unknown_values_and_reordered_levels_match_scikit_learn() -> None:
    fitted = pd.DataFrame(
        {"a": _categorical(["x", "y", "z"], ["x", "y", "z"]), "b": [1.0, 2.0, 3.0]}
    )
    # At prediction time: levels in another order, one the encoders never saw.
    later = pd.DataFrame(
        {"a": _categorical(["z", "new", "x", "y"], ["new", "z", "y", "x"]), "b": [4.0] * 4}
    )
    for encoder in (
        OneHotEncoder(handle_unknown="ignore", sparse_output=False),
        OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan),
    ):
        prep = ColumnTransformer([("num", "passthrough", ["b"]), ("cat", encoder, ["a"])])
        prep.fit(fitted)
        fast = fast_transform.transform(prep, later)
        assert fast is not None
        np.testing.assert_array_equal(fast, prep.transform(later))


def test_anything_unusual_is_left_to_scikit_learn() -> None:
    fitted = pd.DataFrame({"a": _categorical(["x", "y"], ["x", "y"])})
    strict = ColumnTransformer([("cat", OneHotEncoder(sparse_output=False), ["a"])]).fit(fitted)
    unknown = pd.DataFrame({"a": _categorical(["q"], ["q"])})
    assert fast_transform.transform(strict, unknown) is None
    with pytest.raises(ValueError, match="unknown categor"):  # which scikit-learn then reports
        strict.transform(unknown)
    missing = pd.DataFrame({"a": _categorical([None], ["x", "y"])})
    assert fast_transform.transform(strict, missing) is None
    dropped = ColumnTransformer([("cat", OneHotEncoder(drop="first"), ["a"])]).fit(fitted)
    assert fast_transform.transform(dropped, fitted) is None
