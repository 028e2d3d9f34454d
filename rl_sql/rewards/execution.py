"""ExecutionReward: does the predicted SQL return the gold's rows on every database?

Databases: ``db_paths`` from kwargs when non-empty (real databases, e.g. Spider), else
``synthesize_databases(context, answer, k=num_synth_dbs, seed=synth_seed)`` (test-suite
style: several small databases filled so that wrong queries tend to differ from the gold).

A database on which the gold itself fails (timeout, row cap) is left out of the judgement.
The prediction runs in a ``SqlSandbox`` (a worker process with a memory limit, a deadline
and a row cap), all databases in one round trip. The gold runs in-process through the same
read-only ``execute_sql`` guard and is cached per (database, gold SQL) in an LRU, so the G
completions of one prompt run the gold once per database.

Score (``n`` = databases on which the gold ran without error, ``m`` = of those, databases
where the prediction's result matches the gold's):

===========================================================  ======================
no SQL in the completion, or the SQL fails on a database     ``reward.error_score``, -0.8
where the gold runs (any ErrorKind: parse, schema, timeout...) by default (error kind in details)
runs everywhere, matches on every database (m == n)           1.0
... but the gold result is empty on every database and the   0.5   (empty results are no
prediction is not the gold up to aliases/case/spacing         evidence: ``WHERE 0`` would match)
runs everywhere, wrong somewhere (m < n)                      0.5 * m / n   (< 0.5)
no database to run on (synthesis produced none)               0.0   error "synth_failed"
the gold fails on every database, the prediction runs         0.0   error "gold_failed"
===========================================================  ======================

Matching is ``compare.results_match`` with ``order_matters = query_has_order_by(gold)`` and
``mode = reward.comparison``. DISTINCT is kept as written (``reward.keep_distinct``, the
default): training is stricter than Spider's evaluation, which drops DISTINCT. With
``keep_distinct = False`` the SELECT-level DISTINCT of both queries is removed before running
(DISTINCT inside aggregates, ``count(DISTINCT x)``, is meaning and stays).

Details: ``sql`` (extracted, or None), ``num_dbs``, ``synthesized``, ``error`` (only when the
prediction was not judged: an ErrorKind value, ``synth_failed`` or ``gold_failed``) with its
``message``, ``gold_errors`` (databases where the gold failed), ``db_matches`` (one bool per
judged database), ``order_matters``, ``gold_empty``, ``empty_gold_cap``, ``synth_error``.

A database path that does not exist raises ``FileNotFoundError`` (bad data, not a bad completion).
When synthesis reports an error but still produced databases, the queries run on them anyway
and ``details["synth_error"]`` says what went wrong; the empty-gold rule above then keeps a
degenerate query from full credit.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Generic, TypeVar

import sqlglot
from sqlglot import exp

from rl_sql.config import RewardConfig
from rl_sql.rewards.base import BaseReward, RewardResult
from rl_sql.rewards.parsing import cached_extract
from rl_sql.rewards.semantic import canonical_sql
from rl_sql.sql.compare import query_has_order_by, results_match
from rl_sql.sql.sandbox import SqlSandbox, execute_sql
from rl_sql.sql.synth import synthesize_databases
from rl_sql.sql.types import ErrorKind, ExecResult

MATCH_SCORE = 1.0
EMPTY_GOLD_MATCH_SCORE = 0.5
PARTIAL_CREDIT = 0.5
NO_EVIDENCE_SCORE = 0.0
SYNTH_FAILED = "synth_failed"
GOLD_FAILED = "gold_failed"

K = TypeVar("K")
V = TypeVar("V")


class LruCache(Generic[K, V]):
    """A small least-recently-used map (get/put), bounded to ``maxsize`` entries."""

    def __init__(self, maxsize: int):
        self.maxsize = maxsize
        self._data: OrderedDict[K, V] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: K) -> V | None:
        value = self._data.get(key)
        if value is None:
            self.misses += 1
            return None
        self.hits += 1
        self._data.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self._data[key] = value
        self._data.move_to_end(key)
        while len(self._data) > self.maxsize:
            self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)


@dataclass(frozen=True)
class Databases:
    """Where an example's queries run, and how those databases came to be."""

    paths: tuple[str, ...]
    synthesized: bool
    synth_error: str | None = None
    synth_error_kind: str | None = None
    gold_nonempty: bool | None = None


@lru_cache(maxsize=4096)
def without_select_distinct(sql: str) -> str:
    """``sql`` with every SELECT-level DISTINCT removed (unchanged when sqlglot cannot parse it)."""
    try:
        tree = sqlglot.parse_one(sql, read="sqlite")
    except sqlglot.errors.SqlglotError:
        return sql
    if not any(select.args.get("distinct") for select in tree.find_all(exp.Select)):
        return sql
    for select in tree.find_all(exp.Select):
        select.set("distinct", None)
    return tree.sql(dialect="sqlite")


class ExecutionReward(BaseReward):
    name = "execution"
    max_score = MATCH_SCORE

    def __init__(self, reward_cfg: RewardConfig, *, gold_cache_size: int = 4096, synth_cache_size: int = 2048):
        self.cfg = reward_cfg
        self.cache_dir = Path(reward_cfg.cache_dir).expanduser()
        self._gold_cache_size = gold_cache_size
        self._synth_cache_size = synth_cache_size
        self._reset_process_state()

    def _reset_process_state(self) -> None:
        self._sandbox: SqlSandbox | None = None
        self._sandbox_pid: int | None = None
        self.gold_cache: LruCache[tuple[str, str], ExecResult] = LruCache(self._gold_cache_size)
        self.synth_cache: LruCache[tuple[str, str], Databases] = LruCache(self._synth_cache_size)

    # The sandbox is a worker process: never pickled (Ray ships rewards to actors), created
    # lazily in the process that scores.
    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        for key in ("_sandbox", "_sandbox_pid", "gold_cache", "synth_cache"):
            state.pop(key)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._reset_process_state()

    @property
    def sandbox(self) -> SqlSandbox:
        if self._sandbox is None or self._sandbox_pid != os.getpid():
            self._sandbox = SqlSandbox(
                timeout_s=self.cfg.timeout_s, max_rows=self.cfg.max_rows, memory_mb=self.cfg.memory_mb
            )
            self._sandbox_pid = os.getpid()
        return self._sandbox

    def close(self) -> None:
        """Stop the sandbox process (a later compute starts a new one)."""
        if self._sandbox is not None and self._sandbox_pid == os.getpid():
            self._sandbox.close()
        self._sandbox = None

    def __enter__(self) -> "ExecutionReward":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def databases(self, answer: str, context: str | None, db_paths: Sequence[str]) -> Databases:
        """The databases to run on: ``db_paths``, else (cached) synthesized ones."""
        if db_paths:
            return Databases(paths=tuple(db_paths), synthesized=False)
        if not context:
            raise ValueError(
                "ExecutionReward needs db_paths (real databases) or context (CREATE TABLE text to "
                "synthesize databases from); pass them as keyword arguments, e.g. **example.reward_kwargs()"
            )
        key = (context, answer)
        cached = self.synth_cache.get(key)
        if cached is not None:
            return cached
        synth = synthesize_databases(
            context, answer, k=self.cfg.num_synth_dbs, seed=self.cfg.synth_seed, cache_dir=self.cache_dir
        )
        result = Databases(
            paths=tuple(synth.db_paths),
            synthesized=True,
            synth_error=synth.error,
            synth_error_kind=synth.error_kind,
            gold_nonempty=synth.gold_nonempty,
        )
        self.synth_cache.put(key, result)
        return result

    def gold_result(self, db_path: str, gold_sql: str) -> ExecResult:
        """The gold's result on one database (LRU-cached)."""
        key = (db_path, gold_sql)
        cached = self.gold_cache.get(key)
        if cached is None:
            cached = execute_sql(db_path, gold_sql, timeout_s=self.cfg.timeout_s, max_rows=self.cfg.max_rows)
            self.gold_cache.put(key, cached)
        return cached

    def compute(self, prompt: str, completion: str, answer: str, **kwargs: Any) -> RewardResult:
        sql = cached_extract(completion)
        dbs = self.databases(answer, kwargs.get("context"), kwargs.get("db_paths") or ())
        # "error" is present only when the prediction could not be judged (its kind, or synth_failed / gold_failed).
        details: dict[str, Any] = {
            "sql": sql,
            "num_dbs": len(dbs.paths),
            "synthesized": dbs.synthesized,
        }
        if dbs.synth_error is not None:
            details["synth_error"] = f"{dbs.synth_error_kind}: {dbs.synth_error}"[:300]
        if sql is None:
            details["error"] = ErrorKind.NO_SQL.value
            return RewardResult(self.cfg.error_score, details)
        if not dbs.paths:
            details["error"] = SYNTH_FAILED
            return RewardResult(NO_EVIDENCE_SCORE, details)

        gold_sql, pred_sql = answer, sql
        if not self.cfg.keep_distinct:
            gold_sql, pred_sql = without_select_distinct(answer), without_select_distinct(sql)
        gold_results = [self.gold_result(path, gold_sql) for path in dbs.paths]
        scorable = [i for i, g in enumerate(gold_results) if g.ok]
        details["gold_errors"] = len(dbs.paths) - len(scorable)
        pred_results = self.sandbox.execute_many(dbs.paths, pred_sql)
        failed = next((pred_results[i] for i in scorable if not pred_results[i].ok), None)
        if failed is None and not scorable:
            failed = next((r for r in pred_results if not r.ok), None)
        if failed is not None:
            details["error"] = failed.error.value
            details["message"] = failed.message[:300]
            return RewardResult(self.cfg.error_score, details)
        if not scorable:
            details["error"] = GOLD_FAILED
            details["message"] = gold_results[0].message[:300]
            return RewardResult(NO_EVIDENCE_SCORE, details)

        order_matters = query_has_order_by(answer)
        matches = [
            results_match(gold_results[i], pred_results[i], order_matters=order_matters, mode=self.cfg.comparison)
            for i in scorable
        ]
        gold_empty = all(not gold_results[i].rows for i in scorable)
        details.update(db_matches=matches, order_matters=order_matters, gold_empty=gold_empty)
        if all(matches):
            if gold_empty and canonical_sql(sql) != canonical_sql(answer):
                details["empty_gold_cap"] = True
                return RewardResult(EMPTY_GOLD_MATCH_SCORE, details)
            return RewardResult(MATCH_SCORE, details)
        return RewardResult(PARTIAL_CREDIT * sum(matches) / len(matches), details)
