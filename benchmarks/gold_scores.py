"""How often does the gold earn the top execution reward? On real Spider databases and on synthesized ones.

For every example of a Spider split (default: the train questions of the Spider folder), the
gold SQL is scored as the completion by ``ExecutionReward``:

1. on its real database (``db_paths`` = the Spider .sqlite);
2. as a schema-only example: ``db_paths`` empty, the CREATE TABLE context read from the database,
   databases synthesized from context + gold (``reward.num_synth_dbs`` of them).

Prints the rate of top scores (1.0), the rate of golds returning rows on at least one database,
(synthesized) the synthesizer's "informative" rate, and every reason a gold missed the top,
with counts and a few example ids.

    python benchmarks/gold_scores.py --spider-dir /work/shared/data/spider
    python benchmarks/gold_scores.py --embedded          # the subset shipped in the package
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile

from rl_sql.config import RewardConfig
from rl_sql.data import load_embedded_spider, load_spider_split, resolve_spider_dir
from rl_sql.data.example import SqlExample
from rl_sql.rewards.execution import ExecutionReward
from rl_sql.rewards.gold_check import GoldCheck, check_gold


def _print_report(title: str, report: GoldCheck, by_id: dict[str, SqlExample], synthesized: bool) -> None:
    print(f"\n== {title}: {report.total} examples in {report.seconds:.1f} s")
    print(f"gold scores top (1.0):            {report.top}/{report.total} = {report.top_rate:.2%}")
    print(f"gold returns rows on >= 1 db:      {report.gold_nonempty}/{report.total} = {report.nonempty_rate:.2%}")
    if synthesized:
        print(f"synthesizer says informative:     {report.gold_informative}/{report.total} = {report.informative_rate:.2%}")
    if not report.failures:
        print("no gold missed the top score")
    for reason, count in report.failures.most_common():
        print(f"  {count:5d}  {reason}")
        for example_id in report.failed_ids[reason][:3]:
            ex = by_id[example_id]
            print(f"         {example_id} [{ex.db_id}] {ex.answer[:150]}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spider-dir", default=os.environ.get("RL_SQL_SPIDER_DIR", "/work/shared/data/spider"))
    parser.add_argument("--embedded", action="store_true", help="use the subset shipped in the package")
    parser.add_argument("--split", choices=["train", "dev"], default="train")
    parser.add_argument("--limit", type=int, default=None, help="first N examples only")
    parser.add_argument("--cache-dir", default=None, help="synthesis cache (default: a fresh temp dir, i.e. cold)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    if args.embedded:
        examples = load_embedded_spider()
    else:
        examples = load_spider_split(resolve_spider_dir(args.spider_dir), args.split)
    examples = examples[: args.limit] if args.limit else examples
    by_id = {ex.id: ex for ex in examples}

    with tempfile.TemporaryDirectory(prefix="rl_sql_gold_") as tmp:
        cfg = RewardConfig(cache_dir=args.cache_dir or tmp)
        print(f"{len(examples)} examples over {len({e.db_id for e in examples})} databases; "
              f"k={cfg.num_synth_dbs} synthesized dbs, timeout {cfg.timeout_s} s, comparison {cfg.comparison}")
        with ExecutionReward(cfg) as reward:
            _print_report("real databases", check_gold(examples, reward), by_id, synthesized=False)
            _print_report("schema only, synthesized databases", check_gold(examples, reward, schema_only=True), by_id, synthesized=True)


if __name__ == "__main__":
    main()
