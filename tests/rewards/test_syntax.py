"""SyntaxReward: -0.5 without a parseable query, 0.0 for a non-query statement, 1.0 for one query."""

from __future__ import annotations

from rl_sql.rewards import SyntaxReward

REWARD = SyntaxReward()


def score(completion: str) -> float:
    return REWARD.compute("prompt", completion, "SELECT 1").score


def test_single_select_scores_top():
    assert score("SELECT name FROM singer WHERE age > 30") == 1.0


def test_cte_and_set_operations_are_queries():
    assert score("WITH a AS (SELECT 1 AS x) SELECT x FROM a") == 1.0
    assert score("SELECT a FROM t UNION SELECT b FROM u") == 1.0


def test_prose_without_sql_is_invalid():
    result = REWARD.compute("prompt", "I cannot answer that question.", "SELECT 1")
    assert result.score == -0.5 and result.details["verdict"] == "no_sql"


def test_unparseable_sql_is_invalid():
    result = REWARD.compute("prompt", "SELECT name FROM singer WHERE", "SELECT 1")
    assert result.score == -0.5 and result.details["verdict"] == "parse_error"


def test_statement_that_is_not_a_query_is_in_between():
    result = REWARD.compute("prompt", "WITH x AS (SELECT 1) DELETE FROM t", "SELECT 1")
    assert result.score == 0.0 and result.details["verdict"] == "not_a_single_query"
