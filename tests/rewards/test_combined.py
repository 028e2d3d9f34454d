"""CombinedReward, create_sql_reward and custom rewards."""

from __future__ import annotations

import pytest

from rl_sql.config import Config, RewardConfig
from rl_sql.rewards import BaseReward, CombinedReward, RewardResult, SemanticReward, SyntaxReward, create_sql_reward

from rl_sql.data import EMBEDDED_SPIDER_DIR

GYMNAST_DB = str(EMBEDDED_SPIDER_DIR / "database" / "gymnast" / "gymnast.sqlite")


def test_readme_example_runs_as_written():
    from rl_sql.config import Config
    from rl_sql.rewards import create_sql_reward

    config = Config()
    reward_fn = create_sql_reward(config.reward, reward_type="combined")
    result = reward_fn.compute(
        prompt="Schema: CREATE TABLE users (id INT, name TEXT);\n\nQuestion: Get all users",
        completion="SELECT * FROM users",
        answer="SELECT * FROM users",
        context="CREATE TABLE users (id INT, name TEXT);",
    )
    print(result.score, result.details)
    assert result.score == pytest.approx(reward_fn.max_score)
    assert result.details["execution"]["score"] == 1.0


def test_weights_are_applied(reward_cfg):
    cfg = reward_cfg.model_copy(update={"syntax_weight": 0.5, "execution_weight": 0.3, "semantic_weight": 0.7})
    combined = create_sql_reward(cfg, "combined")
    completion, gold = "SELECT Name FROM people", "SELECT Name FROM people ORDER BY Age"
    result = combined.compute("p", completion, gold, db_paths=(GYMNAST_DB,))
    parts = {name: create_sql_reward(cfg, name).compute("p", completion, gold, db_paths=(GYMNAST_DB,)).score
             for name in ("syntax", "execution", "semantic")}
    assert result.score == pytest.approx(0.5 * parts["syntax"] + 0.3 * parts["execution"] + 0.7 * parts["semantic"])
    assert {k: v["weight"] for k, v in result.details.items()} == {"syntax": 0.5, "execution": 0.3, "semantic": 0.7}
    assert {k: v["score"] for k, v in result.details.items()} == parts


def test_zero_weight_component_is_not_computed(reward_cfg):
    combined = create_sql_reward(reward_cfg.model_copy(update={"semantic_weight": 0.0}), "combined")
    result = combined.compute("p", "SELECT Name FROM people", "SELECT Name FROM people", db_paths=(GYMNAST_DB,))
    assert set(result.details) == {"syntax", "execution"}


def test_zero_weight_execution_is_still_measured_but_not_scored(reward_cfg):
    """A sweep may give execution no weight; its accuracy must still be measured."""
    combined = create_sql_reward(reward_cfg.model_copy(update={"execution_weight": 0.0}), "combined")
    wrong = combined.compute("p", "SELECT Name FROM people WHERE Age < 23", "SELECT Name FROM people WHERE Age > 23",
                             db_paths=(GYMNAST_DB,))
    assert wrong.details["execution"]["weight"] == 0.0 and wrong.details["execution"]["score"] < 1.0
    assert wrong.score == pytest.approx(sum(v["weight"] * v["score"] for v in wrong.details.values()))
    right = combined.compute("p", "SELECT Name FROM people", "SELECT Name FROM people", db_paths=(GYMNAST_DB,))
    assert right.details["execution"]["score"] == 1.0
    assert combined.weights == {"syntax": reward_cfg.syntax_weight, "semantic": reward_cfg.semantic_weight}


def test_gold_beats_wrong_beats_error_beats_garbage(reward_cfg):
    combined = create_sql_reward(reward_cfg, "combined")
    gold = "SELECT Name FROM people WHERE Age > 23"
    scores = [
        combined.compute("p", c, gold, db_paths=(GYMNAST_DB,)).score
        for c in (gold, "SELECT Name FROM people WHERE Age < 23", "SELECT Nme FROM people WHERE Age > 23", "hello")
    ]
    assert scores == sorted(scores, reverse=True) and len(set(scores)) == 4


def test_unknown_reward_type_names_the_valid_ones():
    with pytest.raises(ValueError, match="combined, syntax, execution, semantic"):
        create_sql_reward(RewardConfig(), "bleu")


class ShortAnswer(BaseReward):
    """1.0 for completions of at most 40 characters, else 0.0."""

    name = "short"

    def compute(self, prompt, completion, answer, **kwargs):
        return RewardResult(1.0 if len(completion) <= 40 else 0.0, {"chars": len(completion)})


def test_custom_reward_in_a_combination():
    combined = CombinedReward([(SyntaxReward(), 0.5), (ShortAnswer(), 0.5)])
    short = combined.compute("p", "SELECT 1", "SELECT 1")
    long = combined.compute("p", "SELECT 1 " + "-- padding " * 10, "SELECT 1")
    assert short.score == pytest.approx(1.0) and long.score == pytest.approx(0.5)
    assert long.details["short"]["details"]["chars"] > 40
    assert combined.max_score == pytest.approx(1.0)


def test_component_names_must_be_distinct():
    with pytest.raises(ValueError, match="distinct names"):
        CombinedReward([(SemanticReward(), 0.5), (SemanticReward(), 0.5)])


def test_config_default_weights():
    combined = create_sql_reward(Config().reward, "combined")
    assert combined.weights == {"syntax": 0.2, "execution": 0.6, "semantic": 0.2}
