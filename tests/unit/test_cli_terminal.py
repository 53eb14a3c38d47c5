"""The one-line terminal progress of long commands."""

from __future__ import annotations

import argparse
import io

import pytest

from churndesk.cli.context import CommandContext
from churndesk.cli.terminal import terminal_progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def context(stderr: io.StringIO, *, json: bool = False) -> CommandContext:
    return CommandContext(argparse.Namespace(json=json), stdout=io.StringIO(), stderr=stderr)


def test_progress_is_one_line_rewritten_and_cleared_at_the_end() -> None:
    stderr = Terminal()
    with terminal_progress(context(stderr)) as progress:
        assert progress is not None
        progress(0.25, "Read 250,000 rows")
        progress(0.5, "Read 500,000 rows")
    assert stderr.getvalue() == (
        "\r\x1b[K 25% Read 250,000 rows\r\x1b[K 50% Read 500,000 rows\r\x1b[K"
    )


def test_the_line_is_cleared_when_the_command_fails() -> None:
    stderr = Terminal()
    with pytest.raises(RuntimeError), terminal_progress(context(stderr)) as progress:
        assert progress is not None
        progress(0.1, "Scoring")
        raise RuntimeError("the model is missing")
    assert stderr.getvalue().endswith("\r\x1b[K")  # the error message starts on a clean line


@pytest.mark.parametrize(("stderr", "json"), [(io.StringIO(), False), (Terminal(), True)])
def test_no_progress_for_pipes_and_scripts(stderr: io.StringIO, json: bool) -> None:
    with terminal_progress(context(stderr, json=json)) as progress:
        assert progress is None
    assert stderr.getvalue() == ""
