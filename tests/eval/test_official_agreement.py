"""rl_sql's evaluation verdicts agree with the official Spider evaluator's.

The reference is test-suite-sql-eval's ``exec_eval.eval_exec_match`` (loaded by ``official.py``
from the ``nl2sql360`` package). Both judge the same (gold, prediction) pairs on the real
databases: Spider dev's gold queries (the full dev set when it is present, else the dev copy
embedded in the package), each gold against itself, against its mutants
(``rl_sql.sql.mutate.mutate_query``: wrong columns, operators, literals, dropped conditions,
aggregates, DISTINCT, ORDER BY, LIMIT, joins, GROUP BY, set operations) and against variants the
rules must forgive or not (columns reordered, DISTINCT added, ORDER BY added, spaced operators).
Every pair must get the same verdict, with DISTINCT removed (the default) and kept.

The hardness buckets are checked against the reference's ``Evaluator.eval_hardness`` too.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import sqlglot
from official import load_official, official_hardness, official_verdict
from spider_dev_data import spider_dev
from sqlglot import exp

from rl_sql.data.spider import EMBEDDED_SPIDER_DIR
from rl_sql.eval.hardness import spider_hardness
from rl_sql.eval.spider_eval import EvalRules, SpiderJudge, order_matters
from rl_sql.sql.mutate import mutate_query
from rl_sql.sql.schema import schema_from_sqlite

EMBEDDED_EVERY = 2
"""Without the full dev set, every 2nd question of the embedded dev copy (486) keeps the test short."""


def _variants(gold: str) -> list[tuple[str, str]]:
    """Rewrites whose verdict follows from one rule each."""
    out = []
    tree = sqlglot.parse_one(gold, read="sqlite")
    if isinstance(tree, exp.Select):
        if len(tree.expressions) > 1:
            reordered = tree.copy()
            reordered.set("expressions", list(reversed(reordered.expressions)))
            out.append(("columns_reordered", reordered.sql(dialect="sqlite")))
        if not tree.args.get("distinct"):
            distinct = tree.copy()
            distinct.set("distinct", exp.Distinct())
            out.append(("distinct_added", distinct.sql(dialect="sqlite")))
        if not order_matters(gold) and not tree.args.get("limit"):
            ordered = tree.copy()
            ordered.set("order", exp.Order(expressions=[exp.Ordered(this=exp.Literal.number(1), desc=True)]))
            out.append(("order_by_added", ordered.sql(dialect="sqlite")))  # right: the gold has no ORDER BY
    spaced = gold.replace(">=", "> =").replace("<=", "< =").replace("!=", "! =")
    if spaced != gold:
        out.append(("operators_spaced", spaced))
    return out


@pytest.fixture(scope="module")
def corpus() -> tuple[bool, list[tuple[str, str, str, str]]]:
    """(full dev?, [(db_path, gold, prediction, kind)])."""
    data = spider_dev()
    present = data.present() if data.full else data.present()[::EMBEDDED_EVERY]
    pairs = []
    for index, row in present:
        db = str(data.db_path(row["db_id"]))
        gold = row["query"]
        pairs.append((db, gold, gold, "gold"))
        for mutant in mutate_query(gold, seed=index, schema=schema_from_sqlite(db)):
            pairs.append((db, gold, mutant.sql, mutant.kind))
        for kind, sql in _variants(gold):
            pairs.append((db, gold, sql, kind))
    return data.full, pairs


@pytest.mark.parametrize("keep_distinct", [False, True], ids=["distinct-removed", "distinct-kept"])
def test_verdicts_equal_the_official_evaluators(corpus, keep_distinct):
    full, pairs = corpus
    with SpiderJudge(EvalRules(keep_distinct=keep_distinct)) as judge:
        ours = [judge.judge(gold, pred, [db]).correct for db, gold, pred, _ in pairs]
    theirs = [official_verdict(db, pred, gold, keep_distinct=keep_distinct) for db, gold, pred, _ in pairs]

    disagreements = [(kind, gold, pred, o, t) for (_, gold, pred, kind), o, t in zip(pairs, ours, theirs) if o != t]
    summary = f"{len(pairs)} pairs ({'full dev' if full else 'embedded dev copy'}), {len(disagreements)} disagreements"
    assert not disagreements, summary + ":\n" + "\n".join(map(str, disagreements[:20]))

    kinds = Counter(kind for *_, kind in pairs)
    correct_by_kind = Counter(kind for (*_, kind), o in zip(pairs, ours) if o)
    assert correct_by_kind["gold"] == kinds["gold"]  # every gold is right against itself
    assert correct_by_kind["columns_reordered"] == kinds["columns_reordered"] > 0
    assert correct_by_kind["operators_spaced"] == kinds["operators_spaced"] > 0
    assert correct_by_kind["order_by_added"] == kinds["order_by_added"] > 0
    # The mutants exercise both verdicts, and DISTINCT changes some when it is kept.
    assert 0 < correct_by_kind["column_swap"] < kinds["column_swap"]
    assert 0 < correct_by_kind["order_by"] < kinds["order_by"]
    if keep_distinct:
        assert correct_by_kind["distinct_added"] < kinds["distinct_added"]
        assert correct_by_kind["drop_distinct"] < kinds["drop_distinct"]
    else:
        assert correct_by_kind["distinct_added"] == kinds["distinct_added"] > 0
        assert correct_by_kind["drop_distinct"] == kinds["drop_distinct"] > 0


def test_hardness_equals_the_official_evaluators_on_the_embedded_subset():
    rows = json.loads((EMBEDDED_SPIDER_DIR / "train.json").read_text())
    mismatches = []
    for row in rows:
        db = str(EMBEDDED_SPIDER_DIR / "database" / row["db_id"] / f"{row['db_id']}.sqlite")
        theirs = official_hardness(db, row["query"])
        if spider_hardness(row["query"]) != theirs:
            mismatches.append((row["query"], theirs))
    assert not mismatches, f"{len(mismatches)} of {len(rows)}: {mismatches[:10]}"
    assert set(spider_hardness(r["query"]) for r in rows) == {"easy", "medium", "hard", "extra"}


def test_hardness_equals_the_official_evaluators_on_spider_dev():
    data = spider_dev()
    evaluator = load_official().evaluation.Evaluator()
    if data.full:
        # dev.json carries the reference parse of every query (its "sql" field): all 1034 count.
        theirs = [evaluator.eval_hardness(row["sql"]) for row in data.rows.values()]
        # ... and the test's NLTK setup parses exactly like it (official.py's docstring).
        for index, row in data.present()[::10]:
            assert official_hardness(str(data.db_path(row["db_id"])), row["query"]) == theirs[index]
        ours = [spider_hardness(row["query"]) for row in data.rows.values()]
        assert Counter(theirs) == Counter(easy=248, medium=446, hard=174, extra=166)  # the published split
    else:
        present = data.present()
        theirs = [official_hardness(str(data.db_path(row["db_id"])), row["query"]) for _, row in present]
        ours = [spider_hardness(row["query"]) for _, row in present]
    assert ours == theirs


def test_the_official_loader_is_the_reference_code():
    """The loaded module is test-suite-sql-eval's exec_eval (its public functions are there)."""
    official = load_official()
    for name in ("eval_exec_match", "result_eq", "postprocess", "replace_cur_year"):
        assert callable(getattr(official.exec_eval, name))
    assert Path(official.exec_eval.__file__).name == "exec_eval.py"
    assert official.exec_eval.result_eq([(1, "a")], [("a", 1)], order_matters=False)
