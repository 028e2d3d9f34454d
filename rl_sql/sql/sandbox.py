"""Execute untrusted SQL against SQLite, read-only and bounded in time and memory.

Two layers:

``execute_sql`` (in-process) runs one statement and returns an :class:`ExecResult`;
no exception escapes for anything the SQL text does. Its defences, in order:

1. Text checks before SQLite sees the query: a ``str`` of valid UTF-8 without NUL
   characters (else PARSE), at most ``MAX_SQL_BYTES`` (else FORBIDDEN), exactly one
   statement whose first keyword is SELECT or WITH (another statement keyword such as
   DROP or PRAGMA, or text after the first ';' -> FORBIDDEN; text that does not start
   with a keyword -> PARSE). Comments and trailing semicolons are allowed; SQLite is
   given the statement alone, without them.
2. The database is opened ``mode=ro&immutable=1`` (no writes, no locks, no journal),
   with ``temp_store=MEMORY`` so that sorts never create files.
3. An authorizer allows only SELECT, READ, FUNCTION and RECURSIVE actions, and denies
   the functions in ``DENIED_FUNCTIONS`` by name. ATTACH, PRAGMA, every write, temp
   tables and table-valued functions (``json_each``, ``pragma_table_info``: SQLite
   authorizes their construction as a schema update) are refused with FORBIDDEN.
   Reading ``sqlite_master`` is allowed: the schema is already in the prompt and
   reading it changes nothing.
4. SQLite limits: no attached databases, values at most ``MAX_VALUE_BYTES``
   (``randomblob``/``zeroblob``/``printf`` bombs fail at once), statement length
   ``MAX_SQL_BYTES``.
5. A progress handler interrupts the query at its deadline (TIMEOUT), ``fetchmany``
   caps the rows (TOO_MANY_ROWS), and a row factory caps the total bytes of text and
   blob values in the result (TOO_MANY_ROWS, the message says bytes).

``SqlSandbox`` is the process-level backstop: a persistent worker process (a fresh
``python -I -S`` interpreter that imports only this module and ``types``) with an
address-space limit, no file writes (RLIMIT_FSIZE 0) and a SQLite heap limit. The
parent kills it when a query overruns its deadline by ``KILL_GRACE_S`` (TIMEOUT),
reports a dead worker as CRASH, and starts a new worker on the next call.

Error kinds from SQLite messages: unknown table, column or function -> SCHEMA;
syntax errors, incomplete input, unrecognized tokens, parser limits -> PARSE;
authorizer denials, several statements, writes -> FORBIDDEN; interrupted at the
deadline -> TIMEOUT; anything else (type errors, misuse of aggregates, out of memory,
"string or blob too big") -> RUNTIME.

Limits of the in-process guard: the progress handler runs between SQLite
virtual-machine instructions, so one long instruction (``printf('%.*c', 2000000000,
'x')`` takes ~3 s, and an expression can chain several; sorting millions of rows in
memory) can overrun the deadline, and memory is bounded only by the value and result
caps. Untrusted SQL therefore runs in ``SqlSandbox``, which kills such queries; the
in-process path is meant for trusted (gold) SQL and for tests.

A database path that is not an existing file raises ``FileNotFoundError``: that is
a bug in the caller's data, not something the SQL did.

This module must import nothing but the standard library and ``.types``: the worker
process loads it without the rest of the package.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import stat
import subprocess
import sys
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, Pipe
from pathlib import Path
from typing import Any

from .types import ErrorKind, ExecResult

MAX_SQL_BYTES = 100_000
"""Longest accepted statement, in UTF-8 bytes (model completions are far shorter)."""
MAX_VALUE_BYTES = 10_000_000
"""SQLITE_LIMIT_LENGTH: the largest string or blob SQLite may build."""
MAX_RESULT_BYTES = 64 * 2**20
"""Default cap on the summed length of the text and blob values of one result."""
PROGRESS_EVERY_OPS = 1000
"""SQLite virtual-machine instructions between two deadline checks."""
CONNECTION_CACHE_SIZE = 16
"""Open read-only connections kept per thread (least recently used are closed)."""
KILL_GRACE_S = 0.8
"""SqlSandbox kills a worker that has not answered ``timeout_s + KILL_GRACE_S`` after
a request, so a call returns within ``timeout_s + 1`` seconds."""

DENIED_FUNCTIONS = frozenset(
    {
        "load_extension",
        "readfile",
        "writefile",
        "edit",
        "fts3_tokenizer",
        "zipfile",
        "sqlar_compress",
        "sqlar_uncompress",
        "shell_add_schema",
        "shell_module_schema",
        "shell_escape_crnl",
    }
)
"""Functions refused by the authorizer even if the SQLite build provides them."""

_ALLOWED_ACTIONS = frozenset(
    {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_RECURSIVE}
)
_READ_ONLY_KEYWORDS = ("SELECT", "WITH")
_OTHER_STATEMENT_KEYWORDS = frozenset(
    "ALTER ANALYZE ATTACH BEGIN COMMIT CREATE DELETE DETACH DROP END EXPLAIN INSERT PRAGMA "
    "REINDEX RELEASE REPLACE ROLLBACK SAVEPOINT UPDATE UPSERT VACUUM VALUES".split()
)

SQL_OPAQUE_PATTERN = (
    r"--[^\n]*"
    r"|/\*.*?(?:\*/|\Z)"
    r"|'(?:[^']|'')*(?:'|\Z)"
    r'|"(?:[^"]|"")*(?:"|\Z)'
    r"|`(?:[^`]|``)*(?:`|\Z)"
    r"|\[[^\]]*(?:\]|\Z)"
)
"""Regex (for re.DOTALL) of the SQLite tokens whose content is not SQL: comments, string
literals and quoted identifiers. An unterminated one runs to the end of the text."""
_SKIP_RE = re.compile(SQL_OPAQUE_PATTERN + "|;", re.DOTALL)
_LEADING_TRIVIA_RE = re.compile(r"(?:\s+|--[^\n]*(?:\n|\Z)|/\*.*?(?:\*/|\Z))*", re.DOTALL)
_FIRST_WORD_RE = re.compile(r"[A-Za-z_]+")


def find_statement_end(sql: str, start: int = 0) -> int:
    """Index of the first ';' at or after ``start`` that is outside comments, string
    literals and quoted identifiers, or ``len(sql)`` when there is none."""
    if ";" not in sql[start:]:
        return len(sql)
    for match in _SKIP_RE.finditer(sql, start):
        if match.group() == ";":
            return match.start()
    return len(sql)


def strip_leading_trivia(sql: str, start: int = 0) -> int:
    """Index of the first character at or after ``start`` that is not whitespace or a comment."""
    match = _LEADING_TRIVIA_RE.match(sql, start)
    return match.end() if match else start


def _check_text(sql: str) -> tuple[ErrorKind, str] | str:
    """Why ``sql`` must not reach SQLite, or the one statement to run (without the
    leading comments and the ';' and comments that end it)."""
    if "\x00" in sql:
        return ErrorKind.PARSE, "the SQL contains a NUL character"
    try:
        size = len(sql.encode("utf-8"))
    except UnicodeEncodeError as exc:
        return ErrorKind.PARSE, f"the SQL is not valid UTF-8 text ({exc.reason} at position {exc.start})"
    if size > MAX_SQL_BYTES:
        return ErrorKind.FORBIDDEN, f"the SQL is {size} bytes long; the limit is {MAX_SQL_BYTES}"
    begin = strip_leading_trivia(sql)
    if begin == len(sql):
        return ErrorKind.PARSE, "the SQL is empty (only whitespace or comments)"
    word = _FIRST_WORD_RE.match(sql, begin)
    keyword = word.group().upper() if word else ""
    if keyword not in _READ_ONLY_KEYWORDS:
        if keyword in _OTHER_STATEMENT_KEYWORDS:
            return ErrorKind.FORBIDDEN, f"only a SELECT or WITH statement may run, not {keyword}"
        shown = sql[begin : begin + 20]
        return ErrorKind.PARSE, f"the SQL does not start with a statement keyword: {shown!r}"
    end = find_statement_end(sql, begin)
    rest = end + 1
    while rest < len(sql):
        rest = strip_leading_trivia(sql, rest)
        if rest < len(sql) and sql[rest] != ";":
            return ErrorKind.FORBIDDEN, "only one statement may run; text follows the first ';'"
        rest += 1
    return sql[begin:end]


def classify_sqlite_error(message: str, *, deadline_passed: bool) -> ErrorKind:
    """The ErrorKind of a SQLite (or sqlite3 module) error message."""
    text = message.lower()
    if "interrupted" in text and deadline_passed:
        return ErrorKind.TIMEOUT
    if text.startswith(("no such table", "no such column", "ambiguous column name", "no such function")):
        return ErrorKind.SCHEMA
    if "syntax error" in text or text.startswith(
        ("incomplete input", "unrecognized token", "parser stack overflow", "expression tree is too large")
    ):
        return ErrorKind.PARSE
    if (
        "not authorized" in text
        or "one statement at a time" in text
        or "readonly database" in text
        or "too many attached databases" in text
        or text.startswith("vtable constructor failed")  # the authorizer refused a table-valued function
    ):
        return ErrorKind.FORBIDDEN
    return ErrorKind.RUNTIME


class _ResultTooLarge(Exception):
    """Raised by the row factory when a result's text and blob values exceed their byte budget."""


def _authorize(action: int, arg1: str | None, arg2: str | None, _db: str | None, _trigger: str | None) -> int:
    if action not in _ALLOWED_ACTIONS:
        return sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_FUNCTION and arg2 is not None and arg2.lower() in DENIED_FUNCTIONS:
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


def _lenient_text(raw: bytes) -> str:
    """Text values that are not valid UTF-8 (old Spider databases have a few)."""
    return raw.decode("utf-8", errors="replace")


class _ReadOnlyConnection:
    """One read-only SQLite connection with its authorizer, limits and deadline."""

    def __init__(self, path: str) -> None:
        uri = Path(path).resolve().as_uri() + "?mode=ro&immutable=1"
        self.conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=True)
        self.conn.execute("PRAGMA temp_store = MEMORY")
        self.conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
        self.conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, MAX_VALUE_BYTES)
        self.conn.setlimit(sqlite3.SQLITE_LIMIT_SQL_LENGTH, MAX_SQL_BYTES)
        self.conn.set_authorizer(_authorize)
        self.deadline = 0.0
        self.conn.set_progress_handler(self._past_deadline, PROGRESS_EVERY_OPS)
        self.budget = 0

    def _past_deadline(self) -> int:
        return 1 if time.monotonic() > self.deadline else 0

    def _count_row(self, _cursor: sqlite3.Cursor, row: tuple) -> tuple:
        for value in row:
            kind = type(value)
            if kind is str or kind is bytes:
                self.budget -= len(value)
        if self.budget < 0:
            raise _ResultTooLarge
        return row

    def run(self, sql: str, *, deadline: float, max_rows: int, max_result_bytes: int) -> tuple[list, tuple]:
        """Rows (at most ``max_rows + 1``) and column names; SQLite errors propagate."""
        self.deadline = deadline
        self.budget = max_result_bytes
        cursor = self.conn.cursor()
        cursor.row_factory = self._count_row
        try:
            cursor.execute(sql)
            columns = tuple(col[0] for col in cursor.description or ())
            rows = cursor.fetchmany(max_rows + 1)
        finally:
            cursor.close()
        return rows, columns

    def close(self) -> None:
        self.conn.close()


class _ConnectionCache(threading.local):
    """Per-thread LRU of open connections, keyed by path and the file's identity."""

    def __init__(self) -> None:
        self.entries: OrderedDict[str, tuple[tuple, _ReadOnlyConnection]] = OrderedDict()

    def get(self, path: str) -> _ReadOnlyConnection:
        try:
            info = os.stat(path)
        except FileNotFoundError:
            raise FileNotFoundError(f"database file {path} does not exist") from None
        if not stat.S_ISREG(info.st_mode):
            raise FileNotFoundError(f"database path {path} is not a regular file")
        # A rewritten file gets a new connection: immutable=1 would not notice the change.
        identity = (info.st_ino, info.st_dev, info.st_size, info.st_mtime_ns)
        entry = self.entries.get(path)
        if entry is not None:
            if entry[0] == identity:
                self.entries.move_to_end(path)
                return entry[1]
            del self.entries[path]
            entry[1].close()
        conn = _ReadOnlyConnection(path)
        self.entries[path] = (identity, conn)
        while len(self.entries) > CONNECTION_CACHE_SIZE:
            _, (_, old) = self.entries.popitem(last=False)
            old.close()
        return conn


_CACHE = _ConnectionCache()


def execute_sql(
    db_path: str,
    sql: str,
    *,
    timeout_s: float = 2.0,
    max_rows: int = 10_000,
    max_result_bytes: int = MAX_RESULT_BYTES,
) -> ExecResult:
    """Run one read-only SELECT/WITH statement on ``db_path`` in this process.

    Returns the rows and column names, or the ErrorKind and SQLite's message. The
    deadline starts when the call starts. ``max_result_bytes`` caps the summed length
    of text and blob values. Raises ``FileNotFoundError`` when ``db_path`` is not a
    file and ``TypeError`` when ``sql`` is not a str.
    """
    started = time.monotonic()
    if not isinstance(sql, str):
        raise TypeError(f"sql must be a str, got {type(sql).__name__}")
    db_path = os.fspath(db_path)
    checked = _check_text(sql)
    if not isinstance(checked, str):
        kind, message = checked
        return ExecResult(error=kind, message=message, elapsed_s=time.monotonic() - started)
    sql = checked
    conn = _CACHE.get(db_path)
    deadline = started + timeout_s

    def failed(kind: ErrorKind, message: str) -> ExecResult:
        return ExecResult(error=kind, message=message, elapsed_s=time.monotonic() - started)

    try:
        try:
            rows, columns = conn.run(sql, deadline=deadline, max_rows=max_rows, max_result_bytes=max_result_bytes)
        except sqlite3.OperationalError as exc:
            if not str(exc).startswith("Could not decode to UTF-8"):
                raise
            conn.conn.text_factory = _lenient_text
            try:
                rows, columns = conn.run(sql, deadline=deadline, max_rows=max_rows, max_result_bytes=max_result_bytes)
            finally:
                conn.conn.text_factory = str
    except _ResultTooLarge:
        return failed(ErrorKind.TOO_MANY_ROWS, f"the result holds more than {max_result_bytes} bytes of text and blobs")
    except MemoryError:
        # SQLite reports SQLITE_NOMEM (its heap limit) as MemoryError.
        return failed(ErrorKind.RUNTIME, "out of memory while running the query")
    except (sqlite3.Error, sqlite3.Warning) as exc:
        message = str(exc)
        return failed(classify_sqlite_error(message, deadline_passed=time.monotonic() > deadline), message)
    if len(rows) > max_rows:
        return failed(ErrorKind.TOO_MANY_ROWS, f"the query returns more than {max_rows} rows")
    return ExecResult(rows=tuple(rows), columns=columns, elapsed_s=time.monotonic() - started)


# --------------------------------------------------------------------------- worker process

_PACKAGE_ROOT = Path(__file__).resolve().parent.parent.parent
# The worker imports this module without running the package __init__ files (which
# may import heavy libraries): it registers empty package modules that point at the
# package folders, then imports the module through them.
_BOOTSTRAP = """
import sys, types
root = sys.argv[1]
for name, folder in (("rl_sql", root + "/rl_sql"), ("rl_sql.sql", root + "/rl_sql/sql")):
    module = types.ModuleType(name)
    module.__path__ = [folder]
    sys.modules[name] = module
from rl_sql.sql.sandbox import _serve
_serve(int(sys.argv[2]), int(sys.argv[3]))
"""


def _limit_worker(memory_mb: int) -> None:
    """Resource limits of the worker: address space, SQLite heap, no file writes, no core dumps."""
    import resource

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past RLIMIT_FSIZE fails instead of killing
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the owner; the worker then sees EOF
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    sqlite_heap = memory_mb * 2**20 // 2
    probe = sqlite3.connect(":memory:")
    probe.execute(f"PRAGMA hard_heap_limit = {sqlite_heap}")
    probe.close()
    limit = memory_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _serve(fd: int, memory_mb: int) -> None:
    """Worker loop: one request ``(db_paths, sql, timeout_s, max_rows, max_result_bytes)``
    in, one message per database out, until the pipe closes or ``None`` arrives."""
    conn = Connection(fd)
    _limit_worker(memory_mb)
    try:
        _answer_requests(conn)
    except MemoryError:
        os._exit(3)  # the parent reports CRASH and starts a new worker


def _answer_requests(conn: Connection) -> None:
    while True:
        try:
            request = conn.recv()
        except EOFError:
            return
        if request is None:
            return
        db_paths, sql, timeout_s, max_rows, max_result_bytes = request
        for path in db_paths:
            try:
                result = execute_sql(
                    path, sql, timeout_s=timeout_s, max_rows=max_rows, max_result_bytes=max_result_bytes
                )
                message: tuple = ("ok", _pack(result))
            except MemoryError:
                raise
            except Exception as exc:  # a caller error (missing file): re-raised in the parent
                message = ("raise", type(exc).__name__, str(exc))
            conn.send(message)


def _pack(result: ExecResult) -> tuple:
    return (result.rows, result.columns, result.error.value if result.error else None, result.message, result.elapsed_s)


def _unpack(packed: tuple) -> ExecResult:
    rows, columns, error, message, elapsed_s = packed
    return ExecResult(
        rows=rows,
        columns=columns,
        error=ErrorKind(error) if error is not None else None,
        message=message,
        elapsed_s=elapsed_s,
    )


_RERAISED = {"FileNotFoundError": FileNotFoundError, "TypeError": TypeError, "ValueError": ValueError}


@dataclass
class _Worker:
    process: subprocess.Popen
    conn: Connection
    finalizer: weakref.finalize


def _stop_worker(process: subprocess.Popen, conn: Connection, owner_pid: int) -> None:
    """Close the pipe and kill the worker by its own handle (used by close() and the finalizer).
    Does nothing in a process forked from the owner: the worker is not its to stop."""
    if os.getpid() != owner_pid:
        return
    conn.close()
    if process.poll() is None:
        process.kill()
    process.wait()


class SqlSandbox:
    """Run untrusted SQL in a persistent, resource-limited worker process.

    Each call sends one request over a pipe and waits for one answer per database.
    The worker runs :func:`execute_sql`; if it does not answer within
    ``timeout_s + KILL_GRACE_S`` it is killed and the call returns TIMEOUT; if it dies
    the call returns CRASH. Either way the next call starts a new worker. Calls are
    serialized by a lock. Pickling a sandbox keeps its settings only: the copy starts
    its own worker when first used (create it inside the Ray actor that uses it).
    """

    def __init__(self, timeout_s: float = 2.0, max_rows: int = 10_000, memory_mb: int = 1024) -> None:
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        if max_rows < 1:
            raise ValueError(f"max_rows must be >= 1, got {max_rows}")
        if memory_mb < 64:
            raise ValueError(f"memory_mb must be >= 64 (the worker interpreter needs ~20 MiB), got {memory_mb}")
        self.timeout_s = float(timeout_s)
        self.max_rows = int(max_rows)
        self.memory_mb = int(memory_mb)
        self.max_result_bytes = min(MAX_RESULT_BYTES, self.memory_mb * 2**20 // 8)
        self._worker: _Worker | None = None
        self._owner_pid = os.getpid()
        self._lock = threading.Lock()
        self.workers_started = 0
        """Worker processes started so far (a new one follows each kill or crash)."""

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Start the worker now instead of on the first call."""
        with self._lock:
            self._ensure_worker()

    @property
    def pid(self) -> int | None:
        """Process id of the current worker, None when none runs."""
        return self._worker.process.pid if self._worker is not None else None

    def _ensure_worker(self) -> _Worker:
        if self._owner_pid != os.getpid():  # inherited through fork: the pipe belongs to the parent
            self._worker = None
            self._owner_pid = os.getpid()
        if self._worker is not None and self._worker.process.poll() is None:
            return self._worker
        self._discard_worker()
        parent_end, child_end = Pipe(duplex=True)
        process = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", _BOOTSTRAP]
            + [str(_PACKAGE_ROOT), str(child_end.fileno()), str(self.memory_mb)],
            pass_fds=(child_end.fileno(),),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            close_fds=True,
        )
        child_end.close()
        self.workers_started += 1
        finalizer = weakref.finalize(self, _stop_worker, process, parent_end, os.getpid())
        self._worker = _Worker(process=process, conn=parent_end, finalizer=finalizer)
        return self._worker

    def _discard_worker(self) -> None:
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.finalizer()  # kills (if alive), closes the pipe, reaps the process

    def close(self) -> None:
        """Stop the worker (a later call starts a new one)."""
        with self._lock:
            worker = self._worker
            if worker is None or self._owner_pid != os.getpid():
                self._worker = None
                return
            try:
                worker.conn.send(None)
                worker.process.wait(timeout=1.0)
            except (OSError, subprocess.TimeoutExpired):
                pass  # it is killed just below
            self._discard_worker()

    def __enter__(self) -> "SqlSandbox":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __getstate__(self) -> dict:
        return {"timeout_s": self.timeout_s, "max_rows": self.max_rows, "memory_mb": self.memory_mb}

    def __setstate__(self, state: dict) -> None:
        self.__init__(**state)

    # ------------------------------------------------------------------ queries
    def execute(self, db_path: str, sql: str) -> ExecResult:
        """Run ``sql`` on one database in the worker."""
        return self.execute_many([db_path], sql)[0]

    def execute_many(self, db_paths: Sequence[str], sql: str) -> list[ExecResult]:
        """Run the same ``sql`` on each database, in one round-trip; one result per path.

        Each database gets its own deadline. If the worker is killed or dies on one
        database, the databases after it are not run and get the same error kind with
        a message that says so.
        """
        if not isinstance(sql, str):
            raise TypeError(f"sql must be a str, got {type(sql).__name__}")
        paths = tuple(os.fspath(p) for p in db_paths)
        if not paths:
            return []
        with self._lock:
            worker = self._ensure_worker()
            results: list[ExecResult] = []
            raised: tuple[str, str] | None = None
            started = time.monotonic()
            try:
                worker.conn.send((paths, sql, self.timeout_s, self.max_rows, self.max_result_bytes))
            except OSError:
                return self._fail_rest(results, paths, ErrorKind.CRASH, self._death_message(worker), started)
            for _ in paths:
                waited_from = time.monotonic()
                try:
                    ready = worker.conn.poll(self.timeout_s + KILL_GRACE_S)
                    message = worker.conn.recv() if ready else None
                except (EOFError, OSError):
                    return self._fail_rest(
                        results, paths, ErrorKind.CRASH, self._death_message(worker), waited_from
                    )
                if message is None:
                    return self._fail_rest(
                        results,
                        paths,
                        ErrorKind.TIMEOUT,
                        f"the sandbox worker did not answer within {self.timeout_s + KILL_GRACE_S:.1f} s"
                        " and was killed",
                        waited_from,
                    )
                if message[0] == "ok":
                    results.append(_unpack(message[1]))
                else:
                    raised = raised or (message[1], message[2])
                    results.append(ExecResult(error=ErrorKind.RUNTIME, message=message[2]))
        if raised is not None:
            raise _RERAISED.get(raised[0], RuntimeError)(raised[1])
        return results

    def _death_message(self, worker: _Worker) -> str:
        try:
            code = worker.process.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            return "the sandbox worker closed its pipe"
        if code < 0:
            return f"the sandbox worker died from signal {signal.Signals(-code).name}"
        return f"the sandbox worker exited with status {code} (out of memory)" if code == 3 else (
            f"the sandbox worker exited with status {code}"
        )

    def _fail_rest(
        self, results: list[ExecResult], paths: tuple[str, ...], kind: ErrorKind, message: str, since: float
    ) -> list[ExecResult]:
        """Kill the worker; the current database gets ``kind``, the later ones are marked not run."""
        self._discard_worker()
        results.append(ExecResult(error=kind, message=message, elapsed_s=time.monotonic() - since))
        skipped = f"not run: {message} on an earlier database"
        results.extend(ExecResult(error=kind, message=skipped) for _ in paths[len(results) :])
        return results
