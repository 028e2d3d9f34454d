"""How fast does ``rl-sql eval`` judge? Spider dev gold queries and their mutants, on real databases.

Every gold query of Spider dev (whose database exists) is judged against itself and against its
mutants (``mutate_query``), with the evaluation rules (``SpiderJudge``: DISTINCT removed, row
order by the gold's ORDER BY; the prediction in the sandbox process). Prints the pairs judged per
second, the share judged correct, and the verdicts by mutant kind.

    python benchmarks/eval_throughput.py --spider-dir /work/shared/data/spider
    python benchmarks/eval_throughput.py --embedded      # the subset shipped in the package
"""

from __future__ import annotations

import argparse
import logging
import time
from collections import Counter

from rl_sql.data import load_embedded_spider, load_spider_dev, resolve_spider_dir
from rl_sql.eval.spider_eval import EvalRules, SpiderJudge
from rl_sql.sql.mutate import mutate_query
from rl_sql.sql.schema import QueryParseError, schema_from_sqlite


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spider-dir", default="../shared/data/spider")
    parser.add_argument("--embedded", action="store_true", help="the embedded train subset instead of Spider dev")
    parser.add_argument("--keep-distinct", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    examples = load_embedded_spider() if args.embedded else load_spider_dev(resolve_spider_dir(args.spider_dir))
    pairs: list[tuple[str, str, str, str]] = []
    for index, ex in enumerate(examples):
        db = ex.db_paths[0]
        pairs.append((db, ex.answer, ex.answer, "gold"))
        try:
            mutants = mutate_query(ex.answer, seed=index, schema=schema_from_sqlite(db))
        except QueryParseError:
            continue
        pairs += [(db, ex.answer, m.sql, m.kind) for m in mutants]

    with SpiderJudge(EvalRules(keep_distinct=args.keep_distinct)) as judge:
        start = time.perf_counter()
        verdicts = [judge.judge(gold, pred, [db]) for db, gold, pred, _ in pairs]
        seconds = time.perf_counter() - start

    kinds = Counter(kind for *_, kind in pairs)
    correct = Counter(kind for (*_, kind), v in zip(pairs, verdicts) if v.correct)
    print(f"{len(examples)} gold queries, {len(pairs)} (gold, prediction) pairs judged in {seconds:.2f} s "
          f"= {len(pairs) / seconds:.0f} pairs/s (keep_distinct={args.keep_distinct})")
    print(f"judged correct: {sum(correct.values())}/{len(pairs)}")
    for kind, n in kinds.most_common():
        print(f"  {kind:15s} {correct[kind]:5d}/{n:<5d} correct")


if __name__ == "__main__":
    main()
