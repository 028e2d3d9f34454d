"""SemanticReward: 0.8 x token Jaccard after alias/case/quote normalization; -0.2 without SQL."""

from __future__ import annotations

import pytest

from rl_sql.rewards import SemanticReward, canonical_sql

REWARD = SemanticReward()
GOLD = "SELECT T1.name FROM singer AS T1 JOIN concert AS T2 ON T1.id = T2.singer_id WHERE T2.year = 2014"


def test_gold_scores_top():
    assert REWARD.compute("p", GOLD, GOLD).score == pytest.approx(0.8)


def test_alias_case_and_quotes_do_not_matter():
    pred = "select s.NAME from singer s join concert c on s.id = c.singer_id where c.year = 2014"
    assert canonical_sql(pred) == canonical_sql(GOLD)
    assert REWARD.compute("p", pred, GOLD).score == pytest.approx(0.8)


def test_different_query_scores_lower_but_not_below_zero():
    score = REWARD.compute("p", "SELECT count(*) FROM singer", GOLD).score
    assert 0.0 <= score < 0.4


def test_no_sql_scores_bottom():
    assert REWARD.compute("p", "no idea", GOLD).score == -0.2


def test_broken_sql_still_gets_partial_credit():
    score = REWARD.compute("p", "SELECT T1.name FROM singer AS T1 JOIN concert AS T2 ON WHERE", GOLD).score
    assert 0.2 < score < 0.8
