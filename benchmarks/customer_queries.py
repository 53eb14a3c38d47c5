"""The customer table's queries at scale: a page of rows by id, text search, filtered count.

    python benchmarks/customer_queries.py --database URL

Runs against an existing database (e.g. one made by ``churndesk demo --customers 1000000``).
Each figure is the median of repeated runs after one warm-up; the naive comparison for the
page is OFFSET paging to the middle of the table. Prints figures and a last line of JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from typing import Any


def median_ms(fn: Callable[[], Any], repeat: int = 15) -> float:
    fn()
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        runs.append((time.perf_counter() - started) * 1000)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database", required=True)
    args = parser.parse_args()

    import numpy as np
    from sqlalchemy import text

    from churndesk.db.connect import open_database
    from churndesk.db.queries.customers import (
        CustomerQuery,
        count,
        customer_page,
        ordered_ids,
        rows_by_ids,
    )

    engine = open_database(args.database).engine
    with engine.connect() as connection:
        total = int(connection.execute(text("SELECT COUNT(*) FROM customers")).scalar() or 0)
        rng = np.random.default_rng(0)
        ids = ordered_ids(connection, CustomerQuery(sort="id", descending=False))
        page = rng.choice(ids, 200, replace=False).tolist()
        name = str(
            connection.execute(
                text("SELECT name FROM customers WHERE id = :i"), {"i": page[0]}
            ).scalar()
        )
        term = name.split()[-1][:6].lower() if name else "smith"
        search = CustomerQuery(search=term)
        filtered = CustomerQuery(segment="Small Business", status="active")
        figures = {
            "page_by_id_ms": median_ms(lambda: rows_by_ids(connection, page)),
            "text_search_first_page_ms": median_ms(
                lambda: ordered_ids(connection, search, limit=400)
            ),
            "text_search_count_ms": median_ms(lambda: count(connection, search), repeat=5),
            "filtered_count_ms": median_ms(lambda: count(connection, filtered)),
            "keyset_page_ms": median_ms(
                lambda: customer_page(
                    connection,
                    CustomerQuery(sort="name", descending=False),
                    after=None,
                    limit=500,
                )
            ),
            "offset_page_deep_ms": median_ms(
                lambda: connection.execute(
                    text("SELECT * FROM customers ORDER BY name, id LIMIT 500 OFFSET :o"),
                    {"o": total // 2},
                ).all(),
                repeat=5,
            ),
        }
    for key, value in figures.items():
        print(f"{key:<28} {value:9.1f} ms")
    print(
        json.dumps(
            {
                "benchmark": "customer_queries",
                "database": engine.dialect.name,
                "customers": total,
                "search_term": term,
                **{k: round(v, 2) for k, v in figures.items()},
            }
        )
    )
    engine.dispose()


if __name__ == "__main__":
    main()
