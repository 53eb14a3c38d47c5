"""Closing the app while a job is stuck in a long statement ends the process cleanly."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from churndesk.config import sqlite_url
from churndesk.services.demo import create_demo_database

SCRIPT = textwrap.dedent(
    """
    import sys, threading
    from pathlib import Path
    from churndesk.db.connect import open_database
    from churndesk.ui.app import application, leave
    from churndesk.ui.main_window import MainWindow

    url, marker = sys.argv[1], Path(sys.argv[2])
    app = application()
    MainWindow.SHUTDOWN_WAIT_MS = 200
    window = MainWindow(open_database(url), "alice")
    window.show()
    started = threading.Event()

    def stuck(progress, cancel):
        # Like one long SQL statement: it never looks at its cancel event.
        started.set()
        threading.Event().wait(60)
        marker.write_text("the job outlived the window")

    window.jobs.start("stuck import", stuck)
    while not started.is_set():
        app.processEvents()
    window.close()
    sys.exit(leave(window, 0))
    """
)


def test_closing_with_a_stuck_job_exits_without_qt_aborting(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "exit.sqlite3")
    create_demo_database(url, 200, seed=0)
    marker = tmp_path / "marker.txt"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, url, str(marker)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "Destroyed while thread" not in done.stderr
    assert not marker.exists()  # the process ended without waiting for the job
