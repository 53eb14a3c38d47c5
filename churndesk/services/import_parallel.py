"""Read and validate a big CSV file in two worker processes while the import writes.

Parsing and validating cost about 16 s of Python per million 29-column rows, on one core, and
the import waited for it: the database's share was smaller. Here the file is cut into blocks of
about ``BLOCK_BYTES`` at record boundaries, and ``WORKERS`` worker processes parse and validate
them (``importing._ChunkValidator``, the same code as in one process) while the importing
process only writes what comes back, in file order: COPY text for PostgreSQL's staging table,
rows for SQLite's executemany. (Not COPY straight into ``customers``: the attributes JSON would
have to be written with types a worker cannot know, those of the whole file so far.)

A record boundary is a newline with an even number of quote characters before it (CSV doubles a
quote inside a quoted field), counted from the first data byte. A file with a stray quote in an
unquoted field can fool that count; a block whose last record then ends inside quotes shows it
(its last field ends with the newline the cut was made at), and the import reads the file again
in one process. It does the same when a block holds a customer ID that appeared before (the
message names the first row, which only a sequential read knows) or when a worker fails (the
sequential read then raises the error with the right line).

Row numbers and lines come back relative to the block and are made absolute here. Each block
types the extra columns on its own; the candidates are intersected in file order, so the types
so far are what one process would have seen. A cancel or an error kills the workers; if the
importing process dies, they find their task pipe closed and exit.
"""

from __future__ import annotations

import csv
import dataclasses
import gc
import io
import logging
import os
import pickle
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from churndesk.progress import check_cancel

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from churndesk.services.csv_sniff import CsvFormat
    from churndesk.services.import_plan import ImportPlan
    from churndesk.services.importing import RowError

#: Files from this size are read in parallel; smaller ones are quicker in one process than the
#: half second it takes to start the workers.
PARALLEL_MIN_BYTES = 48 * 1024 * 1024
#: A block is cut at the first record boundary after this many bytes: about 17,000 rows of the
#: 29-column Telco layout.
BLOCK_BYTES = 4 * 1024 * 1024
#: A block that grows to this many times the block size without a record boundary in it gives
#: up on reading in parallel (rather than hold the rest of the file in memory).
MAX_BLOCKS_WITHOUT_BOUNDARY = 16
#: Blocks asked of the workers ahead of the one being written: enough to keep both workers busy,
#: few enough that a fast reader does not pile up a file's worth of rows in memory.
BLOCKS_AHEAD = 4
WORKERS = 2
#: Row keys in the staging table: block number times this, plus the row's place in the block.
KEY_STRIDE = 1 << 32
_ENCODINGS = {"utf-8": "utf-8", "utf-8-sig": "utf-8", "cp1252": "cp1252"}
_QUOTE = b'"'
_PROTOCOL = pickle.HIGHEST_PROTOCOL
_NEWLINE = b"\n"


class ReadAgain(Exception):
    """The parallel read cannot give what a sequential read would; read the file in one process."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def eligible(fmt: CsvFormat) -> bool:
    """Whether a file of this format is worth reading in parallel here."""
    return (
        fmt.size_bytes >= PARALLEL_MIN_BYTES
        and fmt.encoding in _ENCODINGS
        and (os.cpu_count() or 1) >= 2
    )


def data_start(path: Path, fmt: CsvFormat, header_line: int) -> int:
    """Byte offset just after the ``header_line`` lines that held the header (and any blank
    lines before it), counting lines as the csv reader does (``\\n``, ``\\r\\n``, ``\\r``)."""
    offset = 3 if fmt.encoding == "utf-8-sig" else 0
    encoding = _ENCODINGS[fmt.encoding]
    with path.open("rb") as raw, io.TextIOWrapper(raw, encoding=fmt.encoding, newline="") as text:
        for _ in range(header_line):
            offset += len(text.readline().encode(encoding))
    return offset


def blocks(path: Path, start: int, size: int | None = None) -> Iterator[tuple[int, int]]:
    """(start, end) byte ranges from ``start`` to the end of the file, each ending just after a
    newline with an even count of quote characters since ``start`` (the last at end of file);
    ``size`` defaults to ``BLOCK_BYTES``."""
    size = size or BLOCK_BYTES
    with path.open("rb") as handle:
        handle.seek(start)
        pending = b""
        while True:
            piece = handle.read(size)
            if not piece:
                if pending:
                    yield start, start + len(pending)
                return
            pending += piece
            if len(pending) < size:
                continue
            cut = _cut(pending)
            if cut > 0:
                yield start, start + cut
                start += cut
                pending = pending[cut:]
            elif len(pending) > MAX_BLOCKS_WITHOUT_BOUNDARY * size:
                # The count of quotes stays odd: a stray quote, or a field of many megabytes.
                raise ReadAgain("no record boundary found within a block")


def _cut(data: bytes) -> int:
    """Length of the longest prefix of ``data`` ending in a newline outside quotes, or -1."""
    newline = data.rfind(_NEWLINE)
    if newline < 0:
        return -1
    quotes = data.count(_QUOTE, 0, newline)
    while quotes % 2:
        earlier = data.rfind(_NEWLINE, 0, newline)
        if earlier < 0:
            return -1
        quotes -= data.count(_QUOTE, earlier, newline)
        newline = earlier
    return newline + 1


@dataclass
class Block:
    """One block, read and validated by a worker; rows and lines relative to the block."""

    number: int
    end_byte: int
    records: int
    valid: int
    rejected: int
    #: The rows to write: COPY CSV text (PostgreSQL) or a list of tuples (SQLite). Their first
    #: column is the row key ``number * KEY_STRIDE + 2 + i``.
    payload: str | list[tuple[Any, ...]]
    errors: list[RowError]
    #: External ids of the valid rows, for duplicates across blocks.
    ids: list[str]
    duplicates: bool
    #: Per extra column: the types its values in this block allow, and whether it had a value.
    types: list[tuple[frozenset[str], bool]]
    #: Physical lines the block spans, and the line its last record ends on (relative).
    lines: int
    last_end_line: int
    ends_inside_quotes: bool = False

    @property
    def first_key(self) -> int:
        """The row key of the block's first record."""
        return self.number * KEY_STRIDE + 2


# --- In the worker processes -----------------------------------------------------------------

_worker: dict[str, Any] = {}


def _start_worker(path: str, fmt: CsvFormat, plan: ImportPlan, dialect: str) -> None:
    from churndesk.services.collection import BULK_THRESHOLD
    from churndesk.services.importing import _ChunkValidator

    threshold = gc.get_threshold()
    gc.set_threshold(max(threshold[0], BULK_THRESHOLD), threshold[1], threshold[2])
    validator = _ChunkValidator(plan, dialect)
    _worker.update(path=path, fmt=fmt, plan=plan, dialect=dialect, validator=validator)


def _read_block(number: int, start: int, end: int) -> Block:
    from churndesk.services.csv_sniff import RecordChunk, add_spanning
    from churndesk.services.import_writes import csv_text

    fmt: CsvFormat = _worker["fmt"]
    plan: ImportPlan = _worker["plan"]
    validator = _worker["validator"]
    with open(_worker["path"], "rb") as handle:
        handle.seek(start)
        data = handle.read(end - start)
    reader = csv.reader(
        io.StringIO(data.decode(_ENCODINGS[fmt.encoding]), newline=""),
        delimiter=fmt.delimiter,
        strict=False,
    )
    batch = list(reader)
    lines = reader.line_num
    if lines == len(batch) and all(batch):
        records, ends = batch, list(range(1, lines + 1))
    else:
        records, ends = [], []
        add_spanning(batch, 0, records, ends)
    # Cut inside a quoted field, the reader ends the file in it: the last field holds the newline.
    inside = bool(records) and records[-1][-1].endswith(("\n", "\r"))
    for attribute in plan.attributes:  # typed by this block alone; merged in file order
        attribute.candidates = {"integer", "number", "boolean"}
        attribute.verified = set()
        attribute.seen_value = False
    validator.seen_ids = {}
    validator.duplicates = 0
    # The validator numbers rows from its chunk's first index; the block's give its row keys.
    prepared = validator.prepare(RecordChunk(number * KEY_STRIDE, records, ends, end), 0)
    rows: Any = prepared.rows
    payload = csv_text(rows) if _worker["dialect"] == "postgresql" else list(rows)
    return Block(
        number=number,
        end_byte=end,
        records=len(records),
        valid=prepared.valid,
        rejected=prepared.rejected,
        payload=payload,
        errors=prepared.errors,
        ids=list(validator.seen_ids),
        duplicates=validator.duplicates > 0,
        types=[(frozenset(a.candidates), a.seen_value) for a in plan.attributes],
        lines=lines,
        last_end_line=ends[-1] if ends else 0,
        ends_inside_quotes=inside,
    )


# --- In the importing process ----------------------------------------------------------------


class ParallelReader:
    """Blocks of ``path`` read and validated by ``WORKERS`` worker processes, in file order.

    The workers are plain ``python -m churndesk.services.import_parallel`` processes fed
    pickles over pipes, not a multiprocessing pool: spawn would run the caller's main script
    again in each worker, and a pool silently replaces workers that die. Block ``n`` goes to
    worker ``n % WORKERS``, so each pipe answers in the order it was asked.
    """

    def __init__(
        self, path: Path, fmt: CsvFormat, plan: ImportPlan, dialect: str, start: int
    ) -> None:
        self.path = path
        self.start = start
        self._workers: list[subprocess.Popen[bytes]] = []
        # The workers import churndesk from where this process did (a source checkout too).
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        try:
            for _ in range(WORKERS):
                worker = subprocess.Popen(
                    [sys.executable, "-m", "churndesk.services.import_parallel"],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    env=env,
                )
                self._workers.append(worker)
                assert worker.stdin is not None
                pickle.dump((str(path), fmt, plan, dialect), worker.stdin, _PROTOCOL)
                worker.stdin.flush()
        except OSError as exc:  # no interpreter to start (an embedded or frozen Python)
            self.close()
            raise ReadAgain(f"the import workers could not start ({exc})") from exc
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> ParallelReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for worker in self._workers:
            worker.kill()
        for worker in self._workers:
            worker.wait()
            for stream in (worker.stdin, worker.stdout):
                if stream is not None:
                    stream.close()
        self._workers = []

    def blocks(self, cancel: threading.Event | None = None) -> Iterator[Block]:
        """Yield every block in order; raises ReadAgain when a worker failed or a block shows
        the cut was not at a record boundary."""
        ranges = enumerate(blocks(self.path, self.start))
        asked: deque[int] = deque()

        def ask() -> None:
            item = next(ranges, None)
            if item is None:
                return
            number, (start, end) = item
            stdin = self._workers[number % WORKERS].stdin
            assert stdin is not None
            try:
                pickle.dump((number, start, end), stdin, _PROTOCOL)
                stdin.flush()
            except OSError as exc:  # the worker is gone; its answer will say why
                log.info("import worker not reachable: %s", exc)
            asked.append(number)

        for _ in range(BLOCKS_AHEAD):
            ask()
        while asked:
            check_cancel(cancel)
            number = asked.popleft()
            stdout = self._workers[number % WORKERS].stdout
            assert stdout is not None
            try:
                answer = pickle.load(stdout)
            except (EOFError, OSError, pickle.UnpicklingError) as exc:
                raise ReadAgain(f"an import worker stopped ({exc!r})") from exc
            if isinstance(answer, BaseException):
                # The read in one process raises it again, with the file's line numbers.
                raise ReadAgain(f"an import worker failed: {answer!r}")
            block: Block = answer
            if block.ends_inside_quotes:
                raise ReadAgain("a block ended inside a quoted field")
            ask()
            yield block


def _serve(tasks: BinaryIO, answers: BinaryIO) -> None:
    """A worker's loop: set up from the first pickle, then answer each block asked for."""
    _start_worker(*pickle.load(tasks))
    while True:
        try:
            number, start, end = pickle.load(tasks)
        except EOFError:  # the importing process closed the pipe, or died
            return
        try:
            answer: Any = _read_block(number, start, end)
        except Exception as exc:  # sent back as the answer: the importer decides
            answer = exc
        pickle.dump(answer, answers, _PROTOCOL)
        answers.flush()


def absolute_errors(
    block: Block, rows_before: int, lines_before: int, previous_end: int
) -> list[RowError]:
    """The block's row errors with the row and line numbers of the file.

    ``rows_before``: data records before the block; ``lines_before``: physical lines before it
    (header included); ``previous_end``: the line the previous record ended on, from which a
    sequential read numbers the line of the block's first record.
    """
    fixed = []
    for error in block.errors:
        index = error.row - block.first_key
        line = previous_end + 1 if index == 0 else lines_before + error.line
        fixed.append(dataclasses.replace(error, row=rows_before + 2 + index, line=line))
    return fixed


if __name__ == "__main__":
    # Served by the module under its real name, so that the blocks pickle as its classes.
    from churndesk.services import import_parallel

    # The answers go to the real stdout; anything printed by mistake goes to stderr instead.
    _answers = sys.stdout.buffer
    sys.stdout = sys.stderr
    import_parallel._serve(sys.stdin.buffer, _answers)
