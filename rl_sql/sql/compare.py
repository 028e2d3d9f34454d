"""Does a predicted query's result match the gold query's result?

Spider rules (``mode="spider"``, the execution-accuracy rules of the Spider
test-suite evaluator, reimplemented):

1. A failed query (``ExecResult.error`` set) matches nothing, not even another failure.
2. Two empty results match, whatever their columns.
3. Different numbers of rows: no match.
4. Different numbers of columns: no match.
5. Column names do not matter, and neither does column order: the prediction matches
   when some permutation of its columns makes it equal to the gold result.
6. Rows are compared as multisets (duplicates count, order does not) unless
   ``order_matters`` (pass ``query_has_order_by(gold_sql)``), when they are compared
   as sequences.
7. Values are compared with Python ``==`` and no tolerance: SQLite's INTEGER 1 and
   REAL 1.0 are equal (``1 == 1.0`` and they hash alike), ``'1'`` and ``1`` are not,
   ``0.1 + 0.2`` and ``0.3`` are not, NULL (``None``) equals only NULL.

BIRD rules (``mode="bird"``): both queries succeed and their rows, as sets (no
duplicates, no order, column order significant), are equal.

The column permutation is searched column by column; a gold column may only take a
predicted column holding the same multiset of values, and every partial assignment
must already give equal multisets of (partial) rows, so the search stays small.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache
from typing import Literal

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from .sandbox import SQL_OPAQUE_PATTERN
from .types import ExecResult


def results_match(
    gold: ExecResult, pred: ExecResult, *, order_matters: bool, mode: Literal["spider", "bird"] = "spider"
) -> bool:
    """True when ``pred``'s result equals ``gold``'s under the rules of ``mode`` (module docstring)."""
    if mode not in ("spider", "bird"):
        raise ValueError(f"mode must be 'spider' or 'bird', got {mode!r}")
    if not gold.ok or not pred.ok:
        return False
    if mode == "bird":
        return set(gold.rows) == set(pred.rows)
    return _spider_rows_match(gold.rows, pred.rows, order_matters=order_matters)


def _spider_rows_match(gold_rows: Sequence[tuple], pred_rows: Sequence[tuple], *, order_matters: bool) -> bool:
    if not gold_rows and not pred_rows:
        return True
    if len(gold_rows) != len(pred_rows):
        return False
    width = len(gold_rows[0])
    if len(pred_rows[0]) != width:
        return False
    if order_matters and tuple(gold_rows) == tuple(pred_rows):
        return True  # fast path: same column order
    if not order_matters and Counter(gold_rows) == Counter(pred_rows):
        return True
    gold_cols = list(zip(*gold_rows))  # (W, N)
    pred_cols = list(zip(*pred_rows))  # (W, N)
    if order_matters:
        # Equal row sequences under a column permutation <=> the columns, as whole
        # vectors, are the same multiset.
        return Counter(gold_cols) == Counter(pred_cols)
    return _find_column_permutation(gold_cols, pred_cols)


def _find_column_permutation(gold_cols: list[tuple], pred_cols: list[tuple]) -> bool:
    """True when some assignment of prediction columns to gold columns makes the row
    multisets equal (depth-first, pruned at every depth)."""
    width = len(gold_cols)
    gold_values = [Counter(col) for col in gold_cols]
    pred_values = [Counter(col) for col in pred_cols]
    # Columns with identical vectors are interchangeable: try only the first unused one.
    first_same = [next(k for k in range(width) if pred_cols[k] == pred_cols[j]) for j in range(width)]
    candidates = [[j for j in range(width) if pred_values[j] == gold_values[i]] for i in range(width)]
    if any(not options for options in candidates):
        return False
    used = [False] * width
    chosen: list[int] = []

    def extend(depth: int) -> bool:
        if depth == width:
            return True
        for j in candidates[depth]:
            if used[j] or any(not used[k] and first_same[k] == first_same[j] for k in range(first_same[j], j)):
                continue
            chosen.append(j)
            if depth == 0 or _same_row_multiset(gold_cols[: depth + 1], [pred_cols[k] for k in chosen]):
                used[j] = True
                if extend(depth + 1):
                    return True
                used[j] = False
            chosen.pop()
        return False

    return extend(0)


def _same_row_multiset(gold_cols: list[tuple], pred_cols: list[tuple]) -> bool:
    return Counter(zip(*gold_cols)) == Counter(zip(*pred_cols))


@lru_cache(maxsize=8192)
def query_has_order_by(sql: str) -> bool:
    """True when the statement itself (not a subquery, CTE or window) ends with ORDER BY.

    Parsed with sqlglot's SQLite dialect; when sqlglot cannot parse the text, an
    ORDER BY outside all parentheses, strings and comments counts.
    """
    try:
        tree = sqlglot.parse_one(sql, read="sqlite")
    except (SqlglotError, RecursionError):
        return _order_by_at_depth_zero(sql)
    while True:
        if tree.args.get("order") is not None:
            return True
        if isinstance(tree, (exp.Subquery, exp.Paren)) and isinstance(tree.this, exp.Expression):
            tree = tree.this
            continue
        return False


_TOKEN_RE = re.compile(
    rf"(?P<skip>{SQL_OPAQUE_PATTERN})|(?P<open>\()|(?P<close>\))|(?P<word>[A-Za-z_]\w*)", re.DOTALL
)


def _order_by_at_depth_zero(sql: str) -> bool:
    depth = 0
    previous = ""
    for match in _TOKEN_RE.finditer(sql):
        kind = match.lastgroup
        if kind == "open":
            depth += 1
            previous = ""
        elif kind == "close":
            depth = max(0, depth - 1)
            previous = ""
        elif kind == "word":
            word = match.group().upper()
            if depth == 0 and previous == "ORDER" and word == "BY":
                return True
            previous = word
    return False
