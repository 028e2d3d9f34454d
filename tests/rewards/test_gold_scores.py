"""The must-show property: the gold earns the top execution score on the embedded Spider subset.

All 1374 examples, twice: on their real databases, and rebuilt as schema-only examples
(db_paths empty, the CREATE TABLE context read from the database) scored on synthesized
databases. ~20 s on one core with a cold synthesis cache.
"""

from __future__ import annotations

import pytest

from rl_sql.data import load_embedded_spider
from rl_sql.rewards.execution import ExecutionReward
from rl_sql.rewards.gold_check import check_gold


@pytest.fixture(scope="module")
def examples():
    return load_embedded_spider()


@pytest.fixture(scope="module")
def reward(reward_cfg):
    with ExecutionReward(reward_cfg) as r:
        yield r


def test_gold_tops_on_real_databases(examples, reward):
    report = check_gold(examples, reward)
    assert report.total == len(examples)
    assert report.top_rate >= 0.99, report.failures


def test_gold_tops_on_synthesized_databases(examples, reward):
    report = check_gold(examples, reward, schema_only=True)
    assert report.top_rate >= 0.99, (report.failures, report.failed_ids)
    assert report.nonempty_rate >= 0.95, report.empty_ids
