"""The drivers JSON written with every score: valid JSON, right features, signs and magnitudes."""

from __future__ import annotations

import json

import numpy as np

from churndesk.services.scoring import _drivers_json


def test_drivers_json_matches_the_contributions() -> None:
    rng = np.random.default_rng(7)
    names = ["Contract", 'Say "hi"', "Tenure ≥ 12", "<b>plan</b>"]
    index = rng.integers(0, len(names), (500, 3))
    contribution = rng.normal(0, 2, (500, 3))
    contribution[0] = [0.0, 123456.789, -0.0004]

    rows = [json.loads(text) for text in _drivers_json(names, index, contribution)]

    assert len(rows) == 500
    for row, columns, values in zip(rows, index, contribution, strict=True):
        assert [d["feature"] for d in row] == [names[c] for c in columns]
        assert [d["direction"] for d in row] == [
            "+" if v > 0 else "-" if v < 0 else "0" for v in values
        ]
        expected = [round(abs(v), 3) if abs(v) < 100 else abs(v) for v in values]
        assert np.allclose([d["magnitude"] for d in row], expected, rtol=1e-5, atol=6e-4)
    assert rows[0][1]["magnitude"] == 123457  # beyond the table: six significant digits


def test_no_customers_no_drivers() -> None:
    assert _drivers_json(["a"], np.empty((0, 3), dtype=np.int64), np.empty((0, 3))) == []
