"""The verifiers task: offline scoring with no model server, weights, taskset loading, env loading."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
import verifiers.v1 as vf

from rl_sql.config import RewardConfig
from rl_sql.data import load_embedded_spider, normalize_sql
from rl_sql.verifiers_env import (
    SqlTaskConfig,
    SqlTaskset,
    load_environment,
    load_taskset,
    score_completion,
    score_completions,
    task_from_example,
)


@pytest.fixture(scope="module")
def reward_cfg(tmp_path_factory) -> RewardConfig:
    return RewardConfig(cache_dir=str(tmp_path_factory.mktemp("synth")))


@pytest.fixture(scope="module")
def example():
    return next(ex for ex in load_embedded_spider() if "JOIN" in ex.answer and "ORDER BY" in ex.answer)


def _score(task, completion) -> vf.Trace:
    return asyncio.run(score_completion(task, completion))


def test_gold_completion_earns_the_top_reward(example, reward_cfg):
    task = task_from_example(example, SqlTaskConfig(reward=reward_cfg))
    trace = _score(task, f"Here you go:\n```sql\n{example.answer}\n```")
    assert {name: r.score for name, r in trace.rewards.items()} == {"syntax": 1.0, "execution": 1.0, "semantic": 0.8}
    assert trace.reward == pytest.approx(0.2 * 1.0 + 0.6 * 1.0 + 0.2 * 0.8)
    assert trace.info["rl_sql"]["execution"]["db_matches"] == [True]


def test_wrong_and_garbage_completions_get_less(example, reward_cfg):
    task = task_from_example(example, SqlTaskConfig(reward=reward_cfg))
    top = _score(task, example.answer).reward
    wrong = _score(task, example.answer.replace("DESC", "ASC") if "DESC" in example.answer else example.answer + " DESC")
    garbage = _score(task, "I am not sure.")
    assert top > wrong.reward > garbage.reward
    assert garbage.rewards["execution"].score == -0.8


def test_schema_only_task_scores_gold_top_on_synthesized_databases(example, reward_cfg):
    schema_only = dataclasses.replace(example, db_paths=())
    task = task_from_example(schema_only, SqlTaskConfig(reward=reward_cfg))
    trace = _score(task, example.answer)
    assert trace.rewards["execution"].score == 1.0
    assert trace.info["rl_sql"]["execution"]["synthesized"] is True


def test_reward_weights_come_from_the_reward_config(example, reward_cfg):
    cfg = reward_cfg.model_copy(update={"syntax_weight": 0.0, "execution_weight": 1.0, "semantic_weight": 0.5})
    task = task_from_example(example, SqlTaskConfig(reward=cfg))
    trace = _score(task, example.answer)
    assert {name: r.weight for name, r in trace.rewards.items()} == {"syntax": 0.0, "execution": 1.0, "semantic": 0.5}
    assert trace.reward == pytest.approx(1.0 + 0.5 * 0.8)


def test_validate_accepts_the_ground_truth(example, reward_cfg):
    task = task_from_example(example, SqlTaskConfig(reward=reward_cfg))
    assert asyncio.run(task.validate()) is True
    broken = task.with_data(answer="SELECT no_such_column FROM nowhere")
    assert asyncio.run(broken.validate()) is False


def test_score_completions_for_the_engine(example, reward_cfg):
    task = task_from_example(example, SqlTaskConfig(reward=reward_cfg))
    traces = score_completions([task, task], [example.answer, "SELECT"])
    assert traces[0].reward > traces[1].reward
    with pytest.raises(ValueError, match="1 tasks but 2 completions"):
        score_completions([task], ["a", "b"])


def test_taskset_heldout_split_has_no_training_gold():
    data = {"source": "spider-embedded", "heldout_fraction": 0.2}
    heldout = list(load_taskset(split="heldout", data=data))
    train = list(load_taskset(split="train", data=data))
    assert heldout and train and all(isinstance(t.data.prompt, str) for t in heldout)
    assert not {normalize_sql(t.data.answer) for t in heldout} & {normalize_sql(t.data.answer) for t in train}
    assert [t.data.idx for t in heldout[:3]] == [0, 1, 2]


def test_load_environment_resolves_the_taskset_by_id():
    env = load_environment(split="all", data={"source": "spider-embedded", "max_examples": 10})
    assert isinstance(env.taskset, SqlTaskset)
    assert len(list(env.taskset)) == 10
