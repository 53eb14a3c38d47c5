"""The ``churndesk`` command line: the desktop app with no sub-command, headless work with one."""

from churndesk.cli.main import main

__all__ = ["main"]
