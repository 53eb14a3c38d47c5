"""Progress of a long command on the terminal: one line on stderr, rewritten in place."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from churndesk.cli.context import CommandContext
from churndesk.progress import ProgressFn


@contextmanager
def terminal_progress(ctx: CommandContext) -> Iterator[ProgressFn | None]:
    """A progress callback while the block runs; None when the command's stderr is not a
    terminal or its output is JSON for a script. The line is cleared when the block ends,
    however it ends, so the summary or the error message starts on a clean line."""
    stream = ctx.stderr
    if ctx.json or not stream.isatty():
        yield None
        return

    def report(fraction: float, text: str) -> None:
        stream.write(f"\r\x1b[K{fraction:4.0%} {text}")
        stream.flush()

    try:
        yield report
    finally:
        stream.write("\r\x1b[K")
        stream.flush()
