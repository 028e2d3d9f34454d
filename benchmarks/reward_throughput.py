"""Scored completions per second on ONE core: rl_sql's CombinedReward vs a naive scorer.

Workload: ``--prompts`` examples of the embedded Spider subset, ``--group`` completions each, the
same completions for every scorer. A group holds what a policy writes during training: the gold
(in a ```sql fence), the gold re-aliased, mutants of the gold (``mutate_query``: wrong but
running), erroring SQL (a misspelt column, a truncated query) and prose without SQL.

Scorers, run one after the other in one process pinned to one core (the sandbox worker process
inherits the pin), torch/OMP threads 1:

a) ``CombinedReward`` (syntax + execution + semantic), as in training: one reward object per
   process, the G completions of a prompt scored together so the gold runs once per database
   (LRU), the prediction in the sandbox process. Two settings:
   a1) real databases (``db_paths``), a2) schema-only examples on synthesized databases (the
       synthesis cache warmed first, as after the first epoch; synthesis time reported apart).
b) naive: every call builds an in-memory SQLite database from the CREATE TABLE context
   (``executescript`` + 5 generated rows per table), checks syntax with ``sqlparse``, runs gold
   and prediction, compares the row lists with ``==``. No timeout, no sandbox, no caching.

    .venv/bin/python benchmarks/reward_throughput.py --prompts 200 --group 8
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import random
import re
import sqlite3
import tempfile
import time
from collections import Counter

os.environ.setdefault("OMP_NUM_THREADS", "1")

import sqlparse  # noqa: E402

from rl_sql.config import RewardConfig  # noqa: E402
from rl_sql.data import load_embedded_spider  # noqa: E402
from rl_sql.data.example import SqlExample  # noqa: E402
from rl_sql.rewards import create_sql_reward  # noqa: E402
from rl_sql.rewards.base import BaseReward, RewardResult  # noqa: E402
from rl_sql.rewards.parsing import cached_extract, cached_parse  # noqa: E402
from rl_sql.rewards.semantic import canonical_tokens  # noqa: E402
from rl_sql.sql.mutate import mutate_query  # noqa: E402


def pin_to_one_core() -> int:
    core = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    return core


def make_group(example: SqlExample, group: int, rng: random.Random) -> list[str]:
    """``group`` completions for one prompt: gold, re-aliased gold, mutants, errors, prose."""
    gold = example.answer
    mutants = [m.sql for m in mutate_query(gold, seed=rng.randrange(10**6))] or [gold + " LIMIT 1"]
    rng.shuffle(mutants)
    words = re.findall(r"\b[A-Za-z_]\w*\b", gold)
    column = next((w for w in reversed(words) if w.upper() not in {"FROM", "WHERE", "SELECT", "BY", "ORDER", "DESC", "ASC", "LIMIT"}), "x")
    pool = [
        f"```sql\n{gold}\n```",
        gold.replace("T1", "a").replace("T2", "b"),
        *[f"The query is:\n```sql\n{m}\n```" for m in mutants[:3]],
        re.sub(rf"\b{re.escape(column)}\b", column + "_x", gold, count=1),
        gold[: max(8, len(gold) // 2)],
        "I think the answer depends on the table, let me check the data first.",
    ]
    return [pool[i % len(pool)] for i in range(group)]


def clear_text_caches() -> None:
    """Empty the module-level extract/parse/token caches: in training every completion is new text."""
    for fn in (cached_extract, cached_parse, canonical_tokens):
        fn.cache_clear()


def run_combined(
    reward: BaseReward, items: list[tuple[SqlExample, list[str]]], schema_only: bool
) -> tuple[float, list[RewardResult]]:
    clear_text_caches()
    results: list[RewardResult] = []
    start = time.perf_counter()
    for example, completions in items:
        if schema_only:
            example = dataclasses.replace(example, db_paths=())
        kwargs = example.reward_kwargs()
        for completion in completions:
            results.append(reward.compute("", completion, example.answer, **kwargs))
    return time.perf_counter() - start, results


def outcome_mix(results: list[RewardResult]) -> str:
    """How the execution component judged the completions (top / wrong / error kinds)."""
    kinds = Counter()
    for r in results:
        ex = r.details["execution"]
        kinds["top" if ex["score"] == 1.0 else ex["details"].get("error", "wrong")] += 1
    return ", ".join(f"{k} {v / len(results):.0%}" for k, v in kinds.most_common())


def _fill_value(declared: str, i: int) -> object:
    t = (declared or "").upper()
    if "INT" in t:
        return i
    if any(k in t for k in ("REAL", "FLOA", "DOUB", "NUM", "DEC")):
        return i * 1.5
    return f"v{i}"


def naive_score(context: str, gold: str, completion: str) -> float:
    """The baseline: fresh in-memory database per call, sqlparse syntax check, == comparison."""
    sql = completion.strip()
    fence = re.search(r"```(?:sql)?\s*(.*?)```", sql, re.S)
    if fence:
        sql = fence.group(1).strip()
    parsed = sqlparse.parse(sql)
    syntax = 1.0 if parsed and parsed[0].get_type() == "SELECT" else -0.5
    con = sqlite3.connect(":memory:")
    try:
        con.executescript(context)
        for (table,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
            cols = con.execute(f'PRAGMA table_info("{table}")').fetchall()
            marks = ", ".join("?" for _ in cols)
            rows = [tuple(_fill_value(c[2], i) for c in cols) for i in range(1, 6)]
            con.executemany(f'INSERT INTO "{table}" VALUES ({marks})', rows)
        gold_rows = con.execute(gold).fetchall()
        try:
            pred_rows = con.execute(sql).fetchall()
        except sqlite3.Error:
            return 0.2 * syntax - 0.6 * 0.8
        return 0.2 * syntax + 0.6 * (1.0 if pred_rows == gold_rows else 0.0)
    finally:
        con.close()


def run_naive(items: list[tuple[SqlExample, list[str]]]) -> float:
    start = time.perf_counter()
    for example, completions in items:
        for completion in completions:
            naive_score(example.context, example.answer, completion)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=200)
    parser.add_argument("--group", type=int, default=8, help="completions per prompt (G)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    core = pin_to_one_core()
    rng = random.Random(args.seed)
    examples = load_embedded_spider()
    chosen = rng.sample(examples, min(args.prompts, len(examples)))
    items = [(ex, make_group(ex, args.group, rng)) for ex in chosen]
    n = sum(len(c) for _, c in items)
    print(f"core {core}; {len(items)} prompts x G={args.group} = {n} completions "
          f"over {len({ex.db_id for ex in chosen})} databases")

    with tempfile.TemporaryDirectory(prefix="rl_sql_tp_") as cache_dir:
        cfg = RewardConfig(cache_dir=cache_dir)
        reward = create_sql_reward(cfg, "combined")
        reward.compute("", "SELECT 1", "SELECT 1", db_paths=(chosen[0].db_paths[0],))  # start the sandbox process
        t_real, results_real = run_combined(reward, items, schema_only=False)

        execution = reward.components[1][0]
        start = time.perf_counter()
        for ex, _ in items:
            execution.databases(ex.answer, ex.context, ())
        t_synth = time.perf_counter() - start
        fresh = create_sql_reward(cfg, "combined")  # new process caches; disk synthesis cache warm
        fresh.compute("", "SELECT 1", "SELECT 1", db_paths=(chosen[0].db_paths[0],))
        t_schema, results_schema = run_combined(fresh, items, schema_only=True)
        for r in (reward, fresh):
            r.components[1][0].close()

    t_naive = run_naive(items)

    print(f"completion mix (real dbs): {outcome_mix(results_real)}")
    print(f"completion mix (synthesized dbs): {outcome_mix(results_schema)}")
    print(f"(a1) CombinedReward, real databases:        {n / t_real:8.0f} completions/s  ({t_real:.2f} s)")
    print(f"(a2) CombinedReward, synthesized databases: {n / t_schema:8.0f} completions/s  ({t_schema:.2f} s; "
          f"one-time synthesis {t_synth / len(items) * 1000:.0f} ms/prompt)")
    print(f"(b)  naive (in-memory db per call, sqlparse, ==): {n / t_naive:8.0f} completions/s  ({t_naive:.2f} s)")
    print(f"ratio a1/b = {t_naive / t_real:.2f}x, a2/b = {t_naive / t_schema:.2f}x")


if __name__ == "__main__":
    main()
