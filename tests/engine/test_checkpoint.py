import random

import torch

from rl_sql.engine import checkpoint


def test_latest_ignores_incomplete_checkpoints(tmp_path):
    for step in (2, 4):
        d = checkpoint.step_dir(tmp_path, step)
        d.mkdir(parents=True)
        checkpoint.save_state(d, step=step, sampler_state={"epoch": 0, "position": step, "consumed": step})
    checkpoint.step_dir(tmp_path, 6).mkdir(parents=True)  # killed mid-save: no state.json
    assert checkpoint.latest(tmp_path) == checkpoint.step_dir(tmp_path, 4)


def test_rng_state_round_trips(tmp_path):
    d = checkpoint.step_dir(tmp_path, 1)
    d.mkdir(parents=True)
    random.seed(5)
    torch.manual_seed(5)
    checkpoint.save_state(d, step=1, sampler_state={})
    expected = (random.random(), torch.rand(3))
    random.seed(99)
    torch.manual_seed(99)
    state = checkpoint.load_state(d)
    assert state["step"] == 1
    assert random.random() == expected[0] and torch.equal(torch.rand(3), expected[1])


def test_prune_keeps_the_newest(tmp_path):
    for step in range(1, 5):
        d = checkpoint.step_dir(tmp_path, step)
        d.mkdir(parents=True)
        checkpoint.save_state(d, step=step, sampler_state={})
    checkpoint.prune(tmp_path, keep=2)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step_000003", "step_000004"]
