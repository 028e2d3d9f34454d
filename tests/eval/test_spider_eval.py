"""The Spider evaluation rules, one per test, on real SQLite databases (rl_sql/eval/spider_eval.py)."""

from __future__ import annotations

import sqlite3

import pytest

from rl_sql.data.spider import EMBEDDED_SPIDER_DIR
from rl_sql.eval.spider_eval import (
    GOLD_FAILED,
    WRONG_RESULT,
    EvalRules,
    SpiderJudge,
    fix_text,
    order_matters,
    remove_distinct,
)
from rl_sql.sql.compare import query_has_order_by
from rl_sql.sql.sandbox import execute_sql

# head(head_ID, name, born_state, age): 10 rows, born_state repeats (California x4, Alabama x2, ...)
DB = str(EMBEDDED_SPIDER_DIR / "database" / "department_management" / "department_management.sqlite")


@pytest.fixture(scope="module")
def judge():
    with SpiderJudge() as j:
        yield j


@pytest.fixture(scope="module")
def strict_judge():
    with SpiderJudge(EvalRules(keep_distinct=True)) as j:
        yield j


# --------------------------------------------------------------------------- text rules


def test_spaced_operators_are_closed_up_and_the_current_year_is_2020():
    assert fix_text("a > = 1 AND b < = 2 AND c ! = 3") == "a >= 1 AND b <= 2 AND c != 3"
    assert fix_text("SELECT year(  curdate ( ) ) - 1") == "SELECT 2020- 1"


def test_remove_distinct_drops_every_distinct_keyword_and_nothing_else():
    assert remove_distinct("SELECT DISTINCT born_state FROM head") == "SELECT  born_state FROM head"
    assert remove_distinct("SELECT count(distinct born_state) FROM head") == "SELECT count( born_state) FROM head"
    assert (
        remove_distinct("SELECT a FROM t WHERE b IN (SELECT DISTINCT b FROM u)")
        == "SELECT a FROM t WHERE b IN (SELECT  b FROM u)"
    )


def test_remove_distinct_leaves_strings_identifiers_and_comments_alone():
    sql = "SELECT 'distinct', \"distinct\", [distinct], distinct_count FROM t -- distinct"
    assert remove_distinct(sql) == sql


def test_remove_distinct_leaves_untokenizable_text_unchanged():
    assert remove_distinct("SELECT DISTINCT 'unterminated") == "SELECT DISTINCT 'unterminated"


def test_order_matters_when_the_gold_has_order_by_anywhere():
    assert order_matters("SELECT a FROM t ORDER BY a")
    assert order_matters("SELECT a FROM t order\n   by a")
    sub = "SELECT name FROM head WHERE head_id IN (SELECT head_id FROM head ORDER BY age LIMIT 5)"
    assert order_matters(sub) and not query_has_order_by(sub)  # evaluation and training differ here
    assert not order_matters("SELECT 'order by' FROM t")
    assert not order_matters("SELECT a FROM t")


# --------------------------------------------------------------------------- judging


def test_gold_against_itself_is_correct(judge):
    verdict = judge.judge("SELECT name FROM head ORDER BY age", "SELECT name FROM head ORDER BY age", [DB])
    assert verdict.correct and verdict.error is None and verdict.order_matters and verdict.num_dbs == 1


def test_dropping_select_distinct_is_right_in_eval_mode_and_wrong_when_distinct_is_kept(judge, strict_judge):
    gold, pred = "SELECT DISTINCT born_state FROM head", "SELECT born_state FROM head"
    assert judge.judge(gold, pred, [DB]).correct
    kept = strict_judge.judge(gold, pred, [DB])
    assert not kept.correct and kept.error == WRONG_RESULT


def test_count_distinct_loses_its_distinct_too(judge, strict_judge):
    gold, pred = "SELECT count(DISTINCT born_state) FROM head", "SELECT count(born_state) FROM head"
    assert judge.judge(gold, pred, [DB]).correct  # 5 vs 10 states, but DISTINCT is removed from both
    assert not strict_judge.judge(gold, pred, [DB]).correct


def test_an_order_by_flip_is_wrong_only_when_the_gold_orders(judge):
    assert judge.judge("SELECT name FROM head ORDER BY age", "SELECT name FROM head ORDER BY age DESC", [DB]).error == WRONG_RESULT
    assert judge.judge("SELECT name FROM head", "SELECT name FROM head ORDER BY age DESC", [DB]).correct


def test_an_order_by_in_a_gold_subquery_makes_row_order_significant(judge):
    gold = "SELECT name FROM head WHERE head_id IN (SELECT head_id FROM head ORDER BY age LIMIT 5)"
    pred = gold + " ORDER BY name"  # same rows, another order
    verdict = judge.judge(gold, pred, [DB])
    assert verdict.order_matters and verdict.error == WRONG_RESULT


def test_column_order_and_names_do_not_matter(judge):
    assert judge.judge("SELECT name, age FROM head", "SELECT age AS years, name FROM head", [DB]).correct


def test_spaced_operators_in_a_prediction_still_run(judge):
    spaced = "SELECT name FROM head WHERE age > = 67"
    assert not execute_sql(DB, spaced).ok  # SQLite alone rejects it
    assert judge.judge("SELECT name FROM head WHERE age >= 67", spaced, [DB]).correct


def test_year_of_curdate_is_2020(judge):
    assert judge.judge(
        "SELECT name FROM head WHERE age > 2020 - 1953", "SELECT name FROM head WHERE age > YEAR(CURDATE()) - 1953", [DB]
    ).correct


def test_a_different_result_is_wrong(judge):
    verdict = judge.judge("SELECT name FROM head WHERE age > 60", "SELECT name FROM head WHERE age > 50", [DB])
    assert not verdict.correct and verdict.error == WRONG_RESULT and "1 of 1" in verdict.message


@pytest.mark.parametrize(
    ("pred", "kind"),
    [
        ("SELECT nope FROM head", "schema"),
        ("SELEC name FROM head", "parse"),
        ("DELETE FROM head", "forbidden"),
        ("SELECT name FROM head; DROP TABLE head", "forbidden"),
        ("", "no_sql"),
        (None, "no_sql"),
    ],
)
def test_a_failing_prediction_is_wrong_with_its_error_kind(judge, pred, kind):
    verdict = judge.judge("SELECT name FROM head", pred, [DB])
    assert not verdict.correct and verdict.error == kind


def test_a_failing_gold_is_not_judged(judge):
    verdict = judge.judge("SELECT nope FROM head", "SELECT name FROM head", [DB])
    assert not verdict.correct and verdict.error == GOLD_FAILED and not verdict.judged


def test_two_empty_results_match(judge):
    verdict = judge.judge("SELECT name FROM head WHERE age > 100", "SELECT born_state FROM head WHERE age < 0", [DB])
    assert verdict.correct and verdict.gold_empty


def test_the_prediction_must_match_on_every_database(judge, tmp_path):
    paths = []
    for i, values in enumerate([(2, 3), (1, 2, 3)]):
        path = tmp_path / f"db{i}.sqlite"
        with sqlite3.connect(path) as conn:
            conn.execute("CREATE TABLE t (x INTEGER)")
            conn.executemany("INSERT INTO t VALUES (?)", [(v,) for v in values])
        paths.append(str(path))
    gold = "SELECT x FROM t WHERE x > 1"
    assert judge.judge(gold, "SELECT x FROM t WHERE x >= 2", paths).correct
    wrong = judge.judge(gold, "SELECT x FROM t WHERE x > 0", paths)  # right on db0 only
    assert wrong.error == WRONG_RESULT and wrong.db_matches == (True, False) and "1 of 2" in wrong.message


def test_a_missing_database_is_an_error_not_a_verdict(judge, tmp_path):
    with pytest.raises(FileNotFoundError):
        judge.judge("SELECT 1", "SELECT 1", [str(tmp_path / "nope.sqlite")])
    with pytest.raises(ValueError, match="at least one database"):
        judge.judge("SELECT 1", "SELECT 1", [])
