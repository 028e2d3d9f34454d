"""Typed results of executing untrusted SQL."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class ErrorKind(str, Enum):
    """Why a query produced no result. The value is what logs and metrics show."""

    NO_SQL = "no_sql"  # nothing that looks like SQL in the completion
    PARSE = "parse"  # SQLite (or sqlglot) could not parse it
    FORBIDDEN = "forbidden"  # not a single read-only SELECT/WITH, or denied by the authorizer
    SCHEMA = "schema"  # unknown table or column
    RUNTIME = "runtime"  # any other SQLite error while running
    TIMEOUT = "timeout"  # deadline passed (progress handler, or the process was killed)
    TOO_MANY_ROWS = "too_many_rows"  # more rows than the cap
    CRASH = "crash"  # the sandbox process died (memory limit); it is restarted


@dataclass(frozen=True)
class ExecResult:
    """Rows and column names of a query, or why there are none."""

    rows: tuple[tuple, ...] = ()
    columns: tuple[str, ...] = ()
    error: ErrorKind | None = None
    message: str = ""
    elapsed_s: float = 0.0
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def ok(self) -> bool:
        return self.error is None
