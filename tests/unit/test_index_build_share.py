"""How far one index build is, from the server's progress view (no database needed)."""

from __future__ import annotations

from typing import Any

import pytest

from churndesk.db import pending_indexes


@pytest.mark.parametrize(
    ("row", "share"),
    [
        (("initializing", 0, 0, 0, 0), 0.0),
        (("building index: scanning table", 50, 100, 0, 0), 0.35),
        (("building index: sorting live tuples", 100, 100, 0, 0), 0.7),
        (("building index: loading tuples in tree", 0, 0, 500, 1000), 0.845),
        (("building index", 80, 100, 0, 0), 0.76),  # GIN: its scan is nearly all of it
    ],
)
def test_one_builds_share_from_the_servers_phase(row: tuple[Any, ...], share: float) -> None:
    assert pending_indexes.build_share(*row) == pytest.approx(share)
