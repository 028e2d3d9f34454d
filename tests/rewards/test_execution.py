"""ExecutionReward on real and synthesized SQLite databases."""

from __future__ import annotations

import pickle
import sqlite3

import pytest

from rl_sql.config import RewardConfig
from rl_sql.rewards import ExecutionReward
from rl_sql.sql.schema import schema_from_sqlite

from rl_sql.data import EMBEDDED_SPIDER_DIR

GYMNAST_DB = str(EMBEDDED_SPIDER_DIR / "database" / "gymnast" / "gymnast.sqlite")

GOLD = "SELECT Name FROM people ORDER BY Height DESC LIMIT 3"
CONTEXT = "CREATE TABLE singer (Singer_ID INT, Name TEXT, Country TEXT, Age INT, PRIMARY KEY (Singer_ID))"
SYNTH_GOLD = "SELECT Name FROM singer WHERE Country = 'France' AND Age > 30"


@pytest.fixture(scope="module")
def reward(reward_cfg):
    with ExecutionReward(reward_cfg) as r:
        yield r


def _db(path, rows, table="t"):
    con = sqlite3.connect(path)
    con.execute(f"CREATE TABLE {table} (a REAL)")
    con.executemany(f"INSERT INTO {table} VALUES (?)", [(r,) for r in rows])
    con.commit()
    con.close()
    return str(path)


def test_gold_scores_top_on_a_real_database(reward):
    result = reward.compute("p", GOLD, GOLD, db_paths=(GYMNAST_DB,))
    assert result.score == 1.0
    assert result.details["db_matches"] == [True] and result.details["synthesized"] is False
    assert "error" not in result.details


def test_gold_scores_top_on_synthesized_databases(reward, reward_cfg):
    result = reward.compute("p", SYNTH_GOLD, SYNTH_GOLD, context=CONTEXT, db_paths=())
    assert result.score == 1.0
    assert result.details["synthesized"] is True
    assert result.details["num_dbs"] == reward_cfg.num_synth_dbs
    assert result.details["gold_empty"] is False


def test_wrong_query_on_synthesized_databases_scores_below_top(reward):
    wrong = "SELECT Name FROM singer WHERE Country = 'France' AND Age >= 30"
    result = reward.compute("p", wrong, SYNTH_GOLD, context=CONTEXT)
    assert 0.0 <= result.score < 1.0 and not all(result.details["db_matches"])


def test_order_matters_when_the_gold_orders(reward):
    wrong_order = "SELECT Name FROM people ORDER BY Height ASC LIMIT 3"
    assert reward.compute("p", wrong_order, GOLD, db_paths=(GYMNAST_DB,)).score < 1.0
    same_rows_any_order = "SELECT Name FROM people ORDER BY Name"
    gold_unordered = "SELECT Name FROM people"
    assert reward.compute("p", same_rows_any_order, gold_unordered, db_paths=(GYMNAST_DB,)).score == 1.0


@pytest.mark.parametrize(
    ("completion", "kind"),
    [
        ("SELECT Nmae FROM people", "schema"),
        ("SELECT * FROM no_such_table", "schema"),
        ("SELECT Name FROM people WHERE", "parse"),
        ("I don't know.", "no_sql"),
        ("```sql\nWITH x AS (SELECT 1) DELETE FROM people\n```", "forbidden"),
    ],
)
def test_errors_score_minus_0_8_with_their_kind(reward, completion, kind):
    result = reward.compute("p", completion, GOLD, db_paths=(GYMNAST_DB,))
    assert result.score == -0.8
    assert result.details["error"] == kind


def test_error_score_is_configurable_and_wrong_results_still_score_zero(reward_cfg):
    cfg = reward_cfg.model_copy(update={"error_score": 0.0})
    with ExecutionReward(cfg) as lenient:
        failing = lenient.compute("p", "SELECT Nmae FROM people", GOLD, db_paths=(GYMNAST_DB,))
        wrong = lenient.compute("p", "SELECT Name FROM people ORDER BY Height ASC LIMIT 3", GOLD, db_paths=(GYMNAST_DB,))
    assert failing.score == 0.0 and failing.details["error"] == "schema"
    assert wrong.score == 0.0 and "error" not in wrong.details
    with pytest.raises(ValueError, match="error_score"):
        RewardConfig(error_score=0.5)


def test_partial_credit_is_the_fraction_of_databases_matched(reward, tmp_path):
    dbs = (_db(tmp_path / "a.sqlite", [1, 2]), _db(tmp_path / "b.sqlite", [1, 2.5]))
    result = reward.compute("p", "SELECT a FROM t WHERE a IN (1, 2)", "SELECT a FROM t WHERE a < 3", db_paths=dbs)
    assert result.details["db_matches"] == [True, False]
    assert result.score == pytest.approx(0.25)


def test_empty_gold_everywhere_caps_a_different_query(reward):
    gold = "SELECT Name FROM people WHERE Height > 1000"
    assert reward.compute("p", gold, gold, db_paths=(GYMNAST_DB,)).score == 1.0
    degenerate = reward.compute("p", "SELECT Name FROM people WHERE 1 = 0", gold, db_paths=(GYMNAST_DB,))
    assert degenerate.score == 0.5 and degenerate.details["empty_gold_cap"]


def test_distinct_is_significant_unless_configured_off(tmp_path, reward_cfg):
    db = _db(tmp_path / "dup.sqlite", [1, 1, 2])
    gold, pred = "SELECT DISTINCT a FROM t", "SELECT a FROM t"
    strict = ExecutionReward(reward_cfg)
    lenient = ExecutionReward(reward_cfg.model_copy(update={"keep_distinct": False}))
    try:
        assert strict.compute("p", pred, gold, db_paths=(db,)).score < 1.0
        assert lenient.compute("p", pred, gold, db_paths=(db,)).score == 1.0
    finally:
        strict.close()
        lenient.close()


def test_gold_runs_once_per_database_for_a_group(reward_cfg):
    reward = ExecutionReward(reward_cfg)
    try:
        completions = [GOLD, "SELECT Name FROM people", "SELECT bad FROM people", GOLD]
        for completion in completions:
            reward.compute("p", completion, GOLD, db_paths=(GYMNAST_DB,))
        assert reward.gold_cache.misses == 1 and reward.gold_cache.hits == 3
    finally:
        reward.close()


def test_database_where_the_gold_fails_is_left_out(reward, tmp_path):
    ok = _db(tmp_path / "ok.sqlite", [1, 2])
    other = _db(tmp_path / "other.sqlite", [1], table="u")  # no table t: the gold fails here too
    result = reward.compute("p", "SELECT a FROM t", "SELECT a FROM t", db_paths=(ok, other))
    assert result.score == 1.0 and result.details["gold_errors"] == 1
    wrong = reward.compute("p", "SELECT a FROM t WHERE a > 1", "SELECT a FROM t", db_paths=(ok, other))
    assert wrong.score == 0.0


def test_needs_a_database_or_a_context(reward):
    with pytest.raises(ValueError, match="db_paths .* or context"):
        reward.compute("p", GOLD, GOLD)


def test_pickles_without_its_sandbox_and_still_scores(reward):
    reward.compute("p", GOLD, GOLD, db_paths=(GYMNAST_DB,))
    clone = pickle.loads(pickle.dumps(reward))
    try:
        assert len(clone.gold_cache) == 0
        assert clone.compute("p", GOLD, GOLD, db_paths=(GYMNAST_DB,)).score == 1.0
    finally:
        clone.close()


def test_schema_only_context_of_a_real_database_works(reward):
    context = schema_from_sqlite(GYMNAST_DB).to_context()
    gold = "SELECT T2.Name FROM gymnast AS T1 JOIN people AS T2 ON T1.Gymnast_ID = T2.People_ID ORDER BY T1.Total_Points DESC"
    assert reward.compute("p", gold, gold, context=context).score == 1.0
