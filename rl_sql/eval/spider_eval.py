"""Execution accuracy with the Spider evaluator's rules: is a predicted query right?

Two sets of rules judge SQL in rl_sql; this module is the evaluation one.

Evaluation (this module, ``rl-sql eval``) follows the defaults of the Spider test-suite
evaluator (Zhong, Yu and Klein 2020, ``exec_eval.eval_exec_match``), reimplemented:

1. Text fixes on both queries: ``> =``, ``< =``, ``! =`` become ``>=``, ``<=``, ``!=``, and
   ``YEAR(CURDATE())`` becomes ``2020`` (plain text replacement, as the reference does).
2. DISTINCT is removed from both queries, everywhere: ``SELECT DISTINCT`` and the DISTINCT of
   ``COUNT(DISTINCT x)`` alike (so ``COUNT(x)`` for ``COUNT(DISTINCT x)`` counts as right).
   It is removed token by token with sqlglot's SQLite tokenizer, so the word inside strings,
   quoted identifiers and comments stays and nothing else of the text changes.
   ``keep_distinct=True`` (``--keep-distinct``) skips this step.
3. Row order matters when the gold query (after step 2) contains ORDER BY anywhere, in a
   subquery too (the reference looks for the text ``order by`` in the gold; here it is the
   ORDER BY keyword token, so a string that contains the words does not count).
4. Both run on each database of the example; the prediction is right when it runs and its
   result matches the gold's on every database where the gold runs
   (``compare.results_match``: multisets of rows, or sequences when order matters; column order
   and names do not matter; two empty results match).

Training's reward (``rl_sql.rewards.execution``) is stricter: it keeps DISTINCT (``SELECT
DISTINCT`` and ``COUNT(DISTINCT x)`` are meaning), makes order matter only when the gold's
top-level statement ends with ORDER BY (``compare.query_has_order_by``), and applies no text
fixes.

Deliberate differences from the reference, all on predictions the reference would crash on,
hang on, or run with side effects (none arises for Spider dev gold queries or their mutants):

- The prediction runs in ``SqlSandbox`` (read-only, one SELECT/WITH statement, deadline
  ``timeout_s``, row cap ``max_rows``): a write, a second statement or a runaway query is an
  error (wrong), where the reference executes it (its 60 s timeout never fires). The reference
  also evaluates only the first statement of a multi-statement prediction when it removes
  DISTINCT (it keeps the first statement of its sqlparse parse); here that is FORBIDDEN.
- An empty prediction is NO_SQL (wrong); the reference crashes on it.
- Text that is not valid UTF-8 in a database reads with replacement characters (the reference
  drops the bytes); both queries see the same text, so verdicts do not change.
- A gold query that fails on a database leaves that database out; failing on all of them makes
  the example unjudgeable (``GOLD_FAILED``); the reference stops with an assertion.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import TokenError
from sqlglot.tokens import TokenType

from rl_sql.sql.compare import results_match
from rl_sql.sql.sandbox import SqlSandbox, execute_sql
from rl_sql.sql.types import ErrorKind, ExecResult

WRONG_RESULT = "wrong_result"
"""The prediction ran on every database but its result differs from the gold's somewhere."""
GOLD_FAILED = "gold_failed"
"""The gold query failed on every database: the example cannot be judged (it is skipped)."""

_SQLITE = Dialect.get_or_raise("sqlite")
_SPACED_OPERATORS = (("> =", ">="), ("< =", "<="), ("! =", "!="))
_CURRENT_YEAR_RE = re.compile(r"YEAR\s*\(\s*CURDATE\s*\(\s*\)\s*\)\s*", re.IGNORECASE)
_CURRENT_YEAR = "2020"


@dataclass(frozen=True)
class EvalRules:
    """How queries are prepared, run and compared (defaults: the Spider evaluator's)."""

    keep_distinct: bool = False
    """False: remove DISTINCT from both queries before running them (Spider's default)."""
    timeout_s: float = 10.0
    """Deadline of one query on one database (the reference has none that works)."""
    max_rows: int = 100_000
    """Row cap of one result (the largest Spider dev gold result has 1,860 rows)."""
    memory_mb: int = 2048
    """Address-space limit of the sandbox process that runs predictions."""


@dataclass(frozen=True)
class Judgement:
    """The verdict on one prediction, and what it was based on."""

    correct: bool
    error: str | None
    """None when correct; else an ErrorKind value (the prediction failed), WRONG_RESULT, or
    GOLD_FAILED (not judged)."""
    message: str = ""
    order_matters: bool = False
    num_dbs: int = 0
    """Databases on which the gold ran (the ones the verdict is based on)."""
    gold_empty: bool = False
    """The gold's result is empty on every judged database (weak evidence on synthesized data)."""
    db_matches: tuple[bool, ...] = field(default=(), compare=False)

    @property
    def judged(self) -> bool:
        return self.error != GOLD_FAILED


def fix_text(sql: str) -> str:
    """Rule 1: close up spaced comparison operators and replace ``YEAR(CURDATE())`` by 2020."""
    for spaced, joined in _SPACED_OPERATORS:
        sql = sql.replace(spaced, joined)
    return _CURRENT_YEAR_RE.sub(_CURRENT_YEAR, sql)


@lru_cache(maxsize=16384)
def remove_distinct(sql: str) -> str:
    """Rule 2: ``sql`` without its DISTINCT keywords (every other character kept).

    Text that sqlglot cannot tokenize (an unterminated string or quoted identifier) is
    returned unchanged: SQLite rejects such text too, with or without DISTINCT.
    """
    try:
        tokens = _SQLITE.tokenize(sql)
    except TokenError:
        return sql
    spans = [(t.start, t.end + 1) for t in tokens if t.token_type == TokenType.DISTINCT]
    if not spans:
        return sql
    pieces, last = [], 0
    for start, end in spans:
        pieces.append(sql[last:start])
        last = end
    pieces.append(sql[last:])
    return "".join(pieces)


@lru_cache(maxsize=16384)
def order_matters(gold_sql: str) -> bool:
    """Rule 3: the gold contains the ORDER BY keyword anywhere (a subquery's counts).

    When sqlglot cannot tokenize the text, the reference's own test decides: the
    lower-cased text contains ``order by``.
    """
    try:
        return any(t.token_type == TokenType.ORDER_BY for t in _SQLITE.tokenize(gold_sql))
    except TokenError:
        return "order by" in gold_sql.lower()


def prepare(sql: str, *, keep_distinct: bool) -> str:
    """Rules 1 and 2 applied to one query, as both the gold and the prediction get them."""
    sql = fix_text(sql)
    return sql if keep_distinct else remove_distinct(sql)


class SpiderJudge:
    """Judges predictions against gold queries on real or synthesized databases.

    Gold queries (trusted data) run in this process through ``execute_sql`` and are cached;
    predictions (untrusted) run in a ``SqlSandbox`` worker process, every database in one
    round trip. Close it (or use it as a context manager) to stop the worker.
    """

    def __init__(self, rules: EvalRules | None = None) -> None:
        self.rules = rules or EvalRules()
        self.sandbox = SqlSandbox(
            timeout_s=self.rules.timeout_s, max_rows=self.rules.max_rows, memory_mb=self.rules.memory_mb
        )
        self._gold_cache: dict[tuple[str, str], ExecResult] = {}

    def close(self) -> None:
        self.sandbox.close()

    def __enter__(self) -> "SpiderJudge":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run_gold(self, db_path: str, gold_sql: str) -> ExecResult:
        """The gold's result on one database (prepared by the rules; cached)."""
        prepared = prepare(gold_sql, keep_distinct=self.rules.keep_distinct)
        key = (db_path, prepared)
        cached = self._gold_cache.get(key)
        if cached is None:
            cached = execute_sql(db_path, prepared, timeout_s=self.rules.timeout_s, max_rows=self.rules.max_rows)
            self._gold_cache[key] = cached
        return cached

    def run_prediction(self, db_paths: Sequence[str], pred_sql: str) -> list[ExecResult]:
        """The prediction's results on each database, in the sandbox (prepared by the rules)."""
        return self.sandbox.execute_many(db_paths, prepare(pred_sql, keep_distinct=self.rules.keep_distinct))

    def judge(self, gold_sql: str, pred_sql: str | None, db_paths: Sequence[str]) -> Judgement:
        """Is ``pred_sql`` right for ``gold_sql`` on ``db_paths``? (rules in the module docstring)

        ``pred_sql`` None or blank means the model gave no SQL (NO_SQL). Raises
        ``FileNotFoundError`` when a database file is missing and ValueError for no databases.
        """
        if not db_paths:
            raise ValueError("judge needs at least one database path")
        ordered = order_matters(prepare(gold_sql, keep_distinct=self.rules.keep_distinct))
        gold = {path: self.run_gold(path, gold_sql) for path in db_paths}
        judged = [path for path in db_paths if gold[path].ok]
        if not judged:
            first = gold[db_paths[0]]
            return Judgement(
                False, GOLD_FAILED, f"the gold query fails: {first.error.value}: {first.message}", ordered
            )
        gold_empty = all(not gold[path].rows for path in judged)
        if pred_sql is None or not pred_sql.strip():
            return Judgement(
                False, ErrorKind.NO_SQL.value, "no SQL in the prediction", ordered, len(judged), gold_empty
            )
        results = self.run_prediction(judged, pred_sql)
        for result in results:
            if not result.ok:
                return Judgement(False, result.error.value, result.message, ordered, len(judged), gold_empty)
        matches = tuple(
            results_match(gold[path], result, order_matters=ordered, mode="spider")
            for path, result in zip(judged, results)
        )
        if all(matches):
            return Judgement(True, None, "", ordered, len(judged), gold_empty, matches)
        where = sum(not m for m in matches)
        return Judgement(
            False,
            WRONG_RESULT,
            f"result differs from the gold's on {where} of {len(matches)} database(s)",
            ordered,
            len(judged),
            gold_empty,
            matches,
        )
