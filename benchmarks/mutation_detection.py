"""How well do synthesized databases tell wrong queries from the gold? (rl_sql/sql/synth.py)

For a sample of Spider training examples, rebuilt as schema-only examples (the context is the real
database's schema, ``schema_from_sqlite(db).to_context()``; no rows):

1. ``synthesize_databases(context, gold, k)`` builds k databases (fresh cache: timed uncached).
2. ``mutate_query(gold, seed=BENCH_MUTANT_SEED + i)`` makes mutants with seeds other than the
   synthesizer's ``SYNTH_MUTANT_SEED``.
3. Oracle: the real Spider database plus ``--oracle-dbs`` fresh random databases (the generator's
   pool profiles and random profiles, other seeds). A mutant is non-equivalent to the gold if on
   some oracle database the gold runs and the mutant fails, or their results differ by
   ``results_match(order_matters=query_has_order_by(gold))``. A timeout or row cap on the (large)
   real database is no evidence either way and is ignored there.
4. A non-equivalent mutant is caught when it fails or differs from the gold on at least one of the
   k synthesized databases.

Reports: the % of non-equivalent mutants caught (overall and per kind), the % of golds informative
(a row with a value other than NULL/0/'') on at least one synthesized database, the % of golds that
match themselves on every synthesized database (sanity), synthesis failures by kind, and the
synthesis time per example. Targets: >= 95% caught, >= 95% informative.

    .venv/bin/python benchmarks/mutation_detection.py --spider-dir /work/shared/data/spider --n 500 --jobs 2
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing import Pool
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from rl_sql.sql.compare import query_has_order_by, results_match  # noqa: E402
from rl_sql.sql.mutate import MUTANT_KINDS, mutate_query  # noqa: E402
from rl_sql.sql.sandbox import execute_sql  # noqa: E402
from rl_sql.sql.schema import schema_from_sqlite  # noqa: E402
from rl_sql.sql.synth import (  # noqa: E402
    POOL_PROFILES,
    SYNTH_MUTANT_SEED,
    analyze_gold,
    fill_database,
    informative,
    make_plan,
    random_profile,
    synthesize_databases,
    write_database,
)
from rl_sql.sql.types import ErrorKind  # noqa: E402

EMBEDDED = REPO / "rl_sql" / "data" / "embedded" / "spider"
BENCH_MUTANT_SEED = 1_000_003
"""Mutant seeds here are BENCH_MUTANT_SEED + example index, never SYNTH_MUTANT_SEED."""
_UNKNOWN_ON_REAL = (ErrorKind.TIMEOUT, ErrorKind.TOO_MANY_ROWS, ErrorKind.CRASH)


@dataclass
class ExampleReport:
    index: int
    db_id: str
    gold: str
    skipped: str | None = None  # why the example was not measured (gold fails on the real db...)
    synth_error_kind: str | None = None
    synth_error: str | None = None
    synth_ms: float = 0.0
    gold_informative: bool = False
    gold_any_row: bool = False
    gold_self_match: bool = False
    # per mutant kind: [non-equivalent, caught, equivalent]
    kinds: dict[str, list[int]] = field(default_factory=dict)
    missed: list[str] = field(default_factory=list)


def load_examples(spider_dir: Path) -> list[tuple[str, str]]:
    """(gold query, db_id) pairs of the training split in ``spider_dir``."""
    for name in ("train.json", "train_spider.question_query_dbid_only.json"):
        path = spider_dir / name
        if path.is_file():
            return [(row["query"], row["db_id"]) for row in json.loads(path.read_text())]
    gold = spider_dir / "train_gold.sql"
    if gold.is_file():
        pairs = [line.rstrip("\n").rsplit("\t", 1) for line in gold.read_text().splitlines() if line.strip()]
        return [(q, db) for q, db in pairs]
    raise SystemExit(f"{spider_dir}: no train.json, train_spider.question_query_dbid_only.json or train_gold.sql")


def _oracle_databases(schema, gold: str, folder: Path, count: int, seed: int) -> list[str]:
    hints = analyze_gold(gold, schema)
    plan = make_plan(schema, hints, seed)
    rng = random.Random(seed)
    paths = []
    for i in range(count):
        profile = POOL_PROFILES[i] if i < len(POOL_PROFILES) else random_profile(rng)
        path = folder / f"oracle_{i}.sqlite"
        write_database(path, schema, fill_database(plan, profile, seed * 1000 + i))
        paths.append(str(path))
    return paths


def measure(args: tuple[int, str, str, Path, int, int, str]) -> ExampleReport:
    index, gold, db_id, spider_dir, k, oracle_dbs, work = args
    report = ExampleReport(index=index, db_id=db_id, gold=gold)
    real_db = spider_dir / "database" / db_id / f"{db_id}.sqlite"
    if not real_db.is_file():
        report.skipped = "no database file"
        return report
    real_gold = execute_sql(str(real_db), gold, timeout_s=5.0)
    if not real_gold.ok:
        report.skipped = f"gold fails on the real database ({real_gold.error.value})"
        return report
    schema = schema_from_sqlite(real_db)
    context = schema.to_context()
    folder = Path(tempfile.mkdtemp(prefix=f"ex{index}-", dir=work))
    started = time.perf_counter()
    synth = synthesize_databases(context, gold, k=k, seed=0, cache_dir=folder / "cache")
    report.synth_ms = (time.perf_counter() - started) * 1000
    if synth.error is not None:
        report.synth_error_kind = synth.error_kind
        report.synth_error = synth.error[:200]
        return report
    order_matters = query_has_order_by(gold)
    golds = [execute_sql(p, gold, timeout_s=2.0) for p in synth.db_paths]
    report.gold_informative = any(informative(g) for g in golds)
    report.gold_any_row = any(g.ok and g.rows for g in golds)
    report.gold_self_match = all(
        g.ok and results_match(g, execute_sql(p, gold, timeout_s=2.0), order_matters=order_matters)
        for g, p in zip(golds, synth.db_paths)
    )
    oracle = _oracle_databases(schema, gold, folder, oracle_dbs, seed=BENCH_MUTANT_SEED + index)
    oracle_golds = [execute_sql(p, gold, timeout_s=2.0) for p in oracle]
    for mutant in mutate_query(gold, seed=BENCH_MUTANT_SEED + index, schema=schema):
        counts = report.kinds.setdefault(mutant.kind, [0, 0, 0])
        non_equivalent = False
        real = execute_sql(str(real_db), mutant.sql, timeout_s=2.0)
        if real.error not in _UNKNOWN_ON_REAL:
            non_equivalent = not real.ok or not results_match(real_gold, real, order_matters=order_matters)
        for p, g in zip(oracle, oracle_golds):
            if non_equivalent:
                break
            if g.ok:
                res = execute_sql(p, mutant.sql, timeout_s=2.0)
                non_equivalent = not res.ok or not results_match(g, res, order_matters=order_matters)
        if not non_equivalent:
            counts[2] += 1
            continue
        counts[0] += 1
        for p, g in zip(synth.db_paths, golds):
            res = execute_sql(p, mutant.sql, timeout_s=2.0)
            if not res.ok or not results_match(g, res, order_matters=order_matters):
                counts[1] += 1
                break
        else:
            report.missed.append(f"[{mutant.kind}] {gold}  =>  {mutant.sql}")
    return report


def _pct(a: int, b: int) -> str:
    return f"{100.0 * a / b:6.2f}%" if b else "   n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spider-dir", type=Path, default=None, help="Spider folder (default: the embedded subset)")
    parser.add_argument("--n", type=int, default=200, help="examples to sample")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed")
    parser.add_argument("--k", type=int, default=3, help="synthesized databases per example")
    parser.add_argument("--oracle-dbs", type=int, default=30, help="random databases in the equivalence oracle")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes")
    parser.add_argument("--show-missed", type=int, default=10, help="print this many missed mutants")
    parser.add_argument("--json", type=Path, default=None, help="also write the summary here")
    args = parser.parse_args()
    spider_dir = args.spider_dir or (EMBEDDED if EMBEDDED.is_dir() else Path("/work/shared/data/spider"))
    examples = load_examples(spider_dir)
    rng = random.Random(args.seed)
    chosen = sorted(rng.sample(range(len(examples)), min(args.n, len(examples))))
    print(f"spider dir: {spider_dir}  examples: {len(examples)}  sampled: {len(chosen)}  k={args.k}  "
          f"oracle: real db + {args.oracle_dbs} random dbs  synth mutant seed {SYNTH_MUTANT_SEED}, "
          f"bench mutant seeds {BENCH_MUTANT_SEED}+i")
    with tempfile.TemporaryDirectory(prefix="mutation-detection-") as work:
        tasks = [(i, examples[i][0], examples[i][1], spider_dir, args.k, args.oracle_dbs, work) for i in chosen]
        started = time.perf_counter()
        if args.jobs > 1:
            with Pool(args.jobs) as pool:
                reports = list(pool.imap_unordered(measure, tasks, chunksize=4))
        else:
            reports = [measure(t) for t in tasks]
        wall = time.perf_counter() - started
    summarize(reports, args, wall)


def summarize(reports: list[ExampleReport], args: argparse.Namespace, wall: float) -> None:
    skipped = Counter(r.skipped for r in reports if r.skipped)
    measured = [r for r in reports if not r.skipped]
    failed = [r for r in measured if r.synth_error_kind]
    ok = [r for r in measured if not r.synth_error_kind]
    kinds: dict[str, list[int]] = {k: [0, 0, 0] for k in MUTANT_KINDS}
    for r in ok:
        for kind, c in r.kinds.items():
            for j in range(3):
                kinds[kind][j] += c[j]
    total = [sum(c[j] for c in kinds.values()) for j in range(3)]
    times = sorted(r.synth_ms for r in measured)
    print(f"\nexamples: {len(reports)}  skipped: {sum(skipped.values())} {dict(skipped)}  measured: {len(measured)}")
    print(f"synthesis failed: {len(failed)}  by kind: {dict(Counter(r.synth_error_kind for r in failed))}")
    for r in failed[:5]:
        print(f"   {r.db_id}: {r.synth_error}")
    print(f"\nmutants: {total[0] + total[2]}  non-equivalent: {total[0]}  equivalent (by the oracle): {total[2]}")
    print(f"{'kind':16s} {'non-equiv':>9s} {'caught':>7s} {'caught %':>8s} {'equiv':>6s}")
    for kind, (ne, caught, eq) in kinds.items():
        print(f"{kind:16s} {ne:9d} {caught:7d} {_pct(caught, ne):>8s} {eq:6d}")
    print(f"{'ALL':16s} {total[0]:9d} {total[1]:7d} {_pct(total[1], total[0]):>8s} {total[2]:6d}   (target >= 95%)")
    n_ok = len(ok)
    informative_n = sum(r.gold_informative for r in ok)
    print(f"\ngold informative on >= 1 synthesized db: {informative_n}/{n_ok} {_pct(informative_n, n_ok)}"
          "  (target >= 95%)")
    print(f"gold returns >= 1 row on >= 1 synthesized db: {sum(r.gold_any_row for r in ok)}/{n_ok} "
          f"{_pct(sum(r.gold_any_row for r in ok), n_ok)}")
    print(f"gold matches itself on every synthesized db: {sum(r.gold_self_match for r in ok)}/{n_ok} "
          f"{_pct(sum(r.gold_self_match for r in ok), n_ok)}")
    if times:
        print(f"synthesis time per example (uncached, k={args.k}): mean {statistics.mean(times):.1f} ms, "
              f"median {statistics.median(times):.1f} ms, p95 {times[int(0.95 * (len(times) - 1))]:.1f} ms, "
              f"max {times[-1]:.1f} ms")
    print(f"benchmark wall time: {wall:.1f} s with {args.jobs} job(s)")
    missed = [m for r in ok for m in r.missed]
    if missed and args.show_missed:
        print(f"\nmissed mutants (first {min(args.show_missed, len(missed))} of {len(missed)}):")
        for m in missed[: args.show_missed]:
            print("  ", m)
    uninformative = [r for r in ok if not r.gold_informative]
    if uninformative and args.show_missed:
        print(f"\nexamples with an uninformative gold (first {min(args.show_missed, len(uninformative))}):")
        for r in uninformative[: args.show_missed]:
            print(f"   #{r.index} {r.db_id}: {r.gold}")
    if args.json is not None:
        summary = {
            "examples": len(reports),
            "skipped": dict(skipped),
            "synth_failed": dict(Counter(r.synth_error_kind for r in failed)),
            "kinds": kinds,
            "caught_rate": total[1] / total[0] if total[0] else None,
            "gold_informative_rate": informative_n / n_ok if n_ok else None,
            "synth_ms_mean": statistics.mean(times) if times else None,
            "uninformative_examples": [r.index for r in uninformative],
        }
        args.json.write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
