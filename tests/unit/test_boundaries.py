"""Direction of dependencies: services, ml and the CLI's headless path never import Qt."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO


def assert_exits_cleanly(code: str) -> None:
    """Run ``code`` in a fresh interpreter (nothing imported yet); it must exit with 0."""
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_services_ml_and_cli_do_not_import_qt() -> None:
    code = (
        "import sys, pkgutil, importlib\n"
        "import churndesk.services, churndesk.ml, churndesk.db, churndesk.cli\n"
        "for pkg in (churndesk.services, churndesk.ml, churndesk.db):\n"
        "    for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):\n"
        "        if '.migrations' not in m.name:\n"
        "            importlib.import_module(m.name)\n"
        "qt = ('PySide6', 'shiboken6', 'pyqtgraph')\n"
        "bad = sorted(m for m in sys.modules if m.startswith(qt))\n"
        "print(bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    assert_exits_cleanly(code)


def test_ui_code_never_touches_sql_directly() -> None:
    ui = REPO / "churndesk" / "ui"
    offenders = [
        str(path.relative_to(REPO))
        for path in ui.rglob("*.py")
        if any(
            needle in path.read_text(encoding="utf-8")
            for needle in ("import sqlalchemy", "from sqlalchemy", "churndesk.db.models")
        )
    ]
    assert offenders == []


def test_start_up_jobs_import_neither_pandas_nor_scikit_learn() -> None:
    """The main window's start-up jobs import these services on worker threads. Importing
    pandas there held the GIL for up to 60 ms at a stretch (scikit-learn: 85 ms), which froze
    the GUI thread for 110-150 ms in the first second on PostgreSQL; only training, scoring
    and demo creation may pay for them."""
    code = (
        "import sys\n"
        "import churndesk.ui.main_window\n"
        "import churndesk.services.alerts, churndesk.services.notify\n"
        "import churndesk.services.models, churndesk.services.scoring\n"
        "import churndesk.services.customer_views, churndesk.services.overview\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('pandas', 'sklearn'))\n"
        "print(heavy[:5])\n"
        "sys.exit(1 if heavy else 0)\n"
    )
    assert_exits_cleanly(code)
