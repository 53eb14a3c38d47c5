"""The status-bar overview: exact counts on small tables, the planner's estimate on large ones."""

from __future__ import annotations

import pytest

from churndesk.db.engine import make_engine
from churndesk.services import overview
from churndesk.services.demo import create_demo_database


def test_overview_counts_customers_models_and_runs(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        empty = overview.database_overview(engine)
        assert (empty.customers, empty.models, empty.scoring_runs) == (0, 0, 0)
        assert empty.customers_text() == "0 customers"
        create_demo_database(db_url, 300, seed=0)
        filled = overview.database_overview(engine)
        assert filled.customers == 300
        assert filled.churned is not None and 0 < filled.churned < 300
        assert not filled.customers_estimated
        assert filled.customers_text() == "300 customers"
    finally:
        engine.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_a_large_postgres_table_is_estimated_not_scanned(db_url: str, monkeypatch) -> None:
    engine = make_engine(db_url)
    try:
        create_demo_database(db_url, 300, seed=0)  # analyses the table: reltuples = 300
        monkeypatch.setattr(overview, "EXACT_COUNT_UP_TO", 100)
        large = overview.database_overview(engine)
        assert large.customers_estimated
        assert large.customers == 300
        assert large.churned is None
        assert large.customers_text() == "about 300 customers"
        with engine.begin() as connection:  # emptied since the estimate was made
            connection.exec_driver_sql("DELETE FROM customers")
        assert overview.database_overview(engine).customers == 0
    finally:
        engine.dispose()
