"""Customer table responsiveness at scale, offscreen: startup, first rows, sort, filter, scroll.

    python benchmarks/ui_table.py --customers 1000000 [--database URL]

Without --database a SQLite demo database with N customers is created in a temporary folder.
Prints figures as it goes and a last line of JSON. The naive way for comparison is what a
straightforward Qt program does: every row in a Python list model under a
QSortFilterProxyModel, sorted on a header click (measured on --naive-rows rows, since at a
million rows it takes minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# A private settings folder: a remembered sort order or window layout would skew the figures.
os.environ["XDG_CONFIG_HOME"] = tempfile.mkdtemp(prefix="churndesk-bench-config-")

STARTUP_SCRIPT = """
import sys, time
from churndesk.ui.app import application
from churndesk.db.connect import open_database
from churndesk.ui.main_window import MainWindow
app = application()
window = MainWindow(open_database(sys.argv[1]), "bench")
window.show()
app.processEvents()
print(time.time())
window.close()
"""


def measure_startup(url: str) -> float:
    """Seconds from launching a Python process to the main window shown (median of 3).

    The child prints the wall-clock time at which its window was shown, so the figure ends
    there and not when the process has finished exiting (which waits for its job threads).
    """
    runs = []
    for _ in range(3):
        start = time.time()
        done = subprocess.run(
            [sys.executable, "-c", STARTUP_SCRIPT, url], check=True, capture_output=True, text=True
        )
        runs.append(float(done.stdout.strip().splitlines()[-1]) - start)
    return sorted(runs)[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--database")
    parser.add_argument("--naive-rows", type=int, default=100_000)
    args = parser.parse_args()

    tmp = tempfile.TemporaryDirectory()
    url = args.database
    if not url:
        from churndesk.config import sqlite_url
        from churndesk.services.demo import create_demo_database

        url = sqlite_url(Path(tmp.name) / "bench.sqlite3")
        started = time.perf_counter()
        create_demo_database(url, args.customers, seed=0)
        print(f"created {args.customers:,} demo customers in {time.perf_counter() - started:.1f} s")

    from PySide6.QtCore import QElapsedTimer, Qt, QTimer
    from PySide6.QtWidgets import QApplication

    from churndesk.db.connect import open_database
    from churndesk.ui.app import application
    from churndesk.ui.main_window import MainWindow
    from churndesk.ui.models.customer_table import COLUMNS, PLACEHOLDER

    startup_s = measure_startup(url)
    print(f"process start to main window: {startup_s:.2f} s")

    app = application()
    database = open_database(url)
    # Record the longest gap between GUI-thread timer ticks: how long the GUI was blocked.
    gaps: list[float] = []
    clock = QElapsedTimer()
    clock.start()
    last = [clock.elapsed()]

    def tick() -> None:
        now = clock.elapsed()
        gaps.append(now - last[0])
        last[0] = now

    ticker = QTimer()
    ticker.setInterval(5)
    ticker.timeout.connect(tick)
    ticker.start()

    def wait_until(predicate, timeout_s: float = 120.0) -> float:
        start = time.perf_counter()
        while not predicate():
            app.processEvents()
            if time.perf_counter() - start > timeout_s:
                raise TimeoutError("benchmark step timed out")
        return time.perf_counter() - start

    started = time.perf_counter()
    window = MainWindow(database, "bench")
    window.resize(1400, 900)
    window.show()
    # Building and first showing the window is the start-up, measured above; the GUI-thread
    # blocks that matter are the ones a user meets once the window is there.
    app.processEvents()  # the first layout and paint
    construct_ms = (time.perf_counter() - started) * 1000
    gaps.clear()
    last[0] = clock.elapsed()
    model = window.customers_pane.model
    table = window.customers_pane.table

    def first_rows() -> bool:
        return model.rowCount() > 0 and model.data(model.index(0, 0)) not in (None, PLACEHOLDER)

    wait_until(first_rows)
    first_rows_s = time.perf_counter() - started
    print(f"first rows on screen: {first_rows_s:.3f} s")

    wait_until(lambda: not model.is_loading())
    full_view_s = time.perf_counter() - started
    rows = model.rowCount()
    print(f"all {rows:,} ids loaded (true count, draggable scroll bar): {full_view_s:.3f} s")
    events: dict[str, float] = {}
    model.first_rows_shown.connect(lambda: events.setdefault("first", time.perf_counter()))
    model.view_loaded.connect(lambda _n: events.setdefault("full", time.perf_counter()))

    def changed_view(action) -> tuple[float, float]:
        events.clear()
        started = time.perf_counter()
        action()
        wait_until(lambda: "full" in events and first_rows())
        first = events.get("first", events["full"])
        return first - started, events["full"] - started

    name_column = [c.key for c in COLUMNS].index("name")
    sort_s, sort_full_s = changed_view(
        lambda: table.sortByColumn(name_column, Qt.SortOrder.AscendingOrder)
    )
    print(f"sort by name: first rows {sort_s:.3f} s, all ids {sort_full_s:.3f} s")

    pane = window.customers_pane
    filter_s, filter_full_s = changed_view(
        lambda: pane.filters.segment.setCurrentIndex(pane.filters.segment.findData("Enterprise"))
    )
    print(
        f"filter segment: first rows {filter_s:.3f} s, all ids {filter_full_s:.3f} s "
        f"({model.rowCount():,} rows)"
    )

    pane.filters.clear()
    wait_until(lambda: not model.is_loading() and model.rowCount() == rows and first_rows())

    def search() -> None:
        pane.filters.search.setText("weaver")
        pane.filters.search.returnPressed.emit()

    search_s, search_full_s = changed_view(search)
    print(
        f"text search 'weaver': first rows {search_s:.3f} s, all ids {search_full_s:.3f} s "
        f"({model.rowCount():,} rows)"
    )

    pane.filters.clear()
    wait_until(lambda: not model.is_loading() and model.rowCount() == rows and first_rows())
    started = time.perf_counter()
    table.scrollToBottom()
    table.viewport().repaint()
    last_row = model.rowCount() - 1
    wait_until(lambda: model.data(model.index(last_row, 0)) not in (None, PLACEHOLDER))
    table.viewport().repaint()
    scroll_s = time.perf_counter() - started
    print(f"scroll to the end and repaint: {scroll_s * 1000:.1f} ms")

    ticker.stop()
    max_block_ms = max(gaps) if gaps else 0.0
    print(f"building and showing the main window: {construct_ms:.0f} ms")
    print(f"longest GUI-thread block once the window was shown: {max_block_ms:.0f} ms")
    window.close()
    database.engine.dispose()

    naive_rows = min(args.naive_rows, rows)
    naive_s = naive_sort_seconds(naive_rows)
    ours_per_row = sort_full_s / rows
    print(
        f"naive QSortFilterProxyModel sort of {naive_rows:,} rows: {naive_s:.2f} s "
        f"(ours: {sort_full_s:.3f} s for all {rows:,})"
    )
    QApplication.processEvents()
    result = {
        "benchmark": "ui_table",
        "customers": rows,
        "database": database.dialect,
        "startup_s": round(startup_s, 3),
        "first_rows_s": round(first_rows_s, 3),
        "full_view_s": round(full_view_s, 3),
        "sort_s": round(sort_s, 3),
        "sort_full_s": round(sort_full_s, 3),
        "filter_s": round(filter_s, 3),
        "filter_full_s": round(filter_full_s, 3),
        "search_s": round(search_s, 3),
        "search_full_s": round(search_full_s, 3),
        "scroll_end_ms": round(scroll_s * 1000, 1),
        "window_build_ms": round(construct_ms, 1),
        "max_gui_block_ms": round(max_block_ms, 1),
        "naive_sort_rows": naive_rows,
        "naive_sort_s": round(naive_s, 3),
        "naive_vs_ours_per_row": round((naive_s / naive_rows) / ours_per_row, 1),
    }
    print(json.dumps(result))
    tmp.cleanup()


def naive_sort_seconds(rows: int) -> float:
    """Load ``rows`` rows into a QStandardItemModel and sort through a proxy, as naive code does."""
    import numpy as np
    from PySide6.QtCore import QSortFilterProxyModel, Qt
    from PySide6.QtGui import QStandardItem, QStandardItemModel

    rng = np.random.default_rng(0)
    names = [f"Customer {v}" for v in rng.integers(0, 10**9, rows)]
    model = QStandardItemModel(rows, 1)
    for i, name in enumerate(names):
        model.setItem(i, 0, QStandardItem(name))
    proxy = QSortFilterProxyModel()
    proxy.setSourceModel(model)
    started = time.perf_counter()
    proxy.sort(0, Qt.SortOrder.AscendingOrder)
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
