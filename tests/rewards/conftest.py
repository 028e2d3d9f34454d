"""Shared fixtures for the reward tests: a RewardConfig whose synthesized databases go to a temp dir."""

from __future__ import annotations

import pytest

from rl_sql.config import RewardConfig


@pytest.fixture(scope="session")
def reward_cfg(tmp_path_factory) -> RewardConfig:
    return RewardConfig(cache_dir=str(tmp_path_factory.mktemp("synth")))
