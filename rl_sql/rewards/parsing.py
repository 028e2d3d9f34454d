"""Cached SQL extraction and sqlglot parsing shared by the rewards.

The components of a CombinedReward look at the same completion one after the other, and
the G completions of a prompt share one gold query: small LRU caches make each string
extracted and parsed once. Parsed trees are shared: callers must not mutate them
(``exp.transform`` and ``.copy()`` return new trees).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import sqlglot
from sqlglot import exp

from rl_sql.sql.extract import extract_sql


@lru_cache(maxsize=4096)
def cached_extract(completion: str) -> str | None:
    """``extract_sql(completion)``, memoized."""
    return extract_sql(completion)


@dataclass(frozen=True)
class Parsed:
    """sqlglot's statements for one SQL string, or why it does not parse."""

    statements: tuple[exp.Expression, ...] = ()
    error: str | None = None

    @property
    def single_query(self) -> exp.Query | None:
        """The statement when the text is exactly one SELECT/WITH/set-operation query."""
        if len(self.statements) == 1 and isinstance(self.statements[0], exp.Query):
            return self.statements[0]
        return None


@lru_cache(maxsize=4096)
def cached_parse(sql: str) -> Parsed:
    """Parse ``sql`` in the SQLite dialect (empty statements from stray ';' are dropped)."""
    try:
        statements = tuple(s for s in sqlglot.parse(sql, read="sqlite") if s is not None)
    except sqlglot.errors.SqlglotError as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else ""
        return Parsed(error=f"{type(exc).__name__}: {first_line[:200]}")
    except RecursionError:
        return Parsed(error="RecursionError: nesting too deep")
    if not statements:
        return Parsed(error="no statement")
    return Parsed(statements=statements)
