"""The sweep's trials: simplex points, seeded draws, lr/beta ranges, recipes per trial."""

import math

import numpy as np
import pytest

from rl_sql.config import Config, ConfigError
from rl_sql.tune.space import TrialSpec, dirichlet_points, grid_resolution, make_trials, simplex_grid

RECIPE = "jobs/tiny_grpo.yaml"


def test_dirichlet_points_lie_on_the_simplex_and_follow_the_seed():
    points_N3 = dirichlet_points(50, seed=3)
    assert points_N3.shape == (50, 3)
    assert (points_N3 >= 0).all()
    np.testing.assert_allclose(points_N3.sum(axis=1), 1.0, atol=1e-9)
    np.testing.assert_array_equal(points_N3, dirichlet_points(50, seed=3))
    assert not np.array_equal(points_N3, dirichlet_points(50, seed=4))
    assert len({tuple(p) for p in points_N3}) == 50


def test_dirichlet_concentration_moves_mass_between_corners_and_centre():
    spread_low = dirichlet_points(400, alpha=0.2, seed=0).max(axis=1).mean()
    spread_high = dirichlet_points(400, alpha=20.0, seed=0).max(axis=1).mean()
    assert spread_low > 0.8 > 0.5 > spread_high


@pytest.mark.parametrize("r, points", [(1, 3), (2, 6), (3, 10)])
def test_simplex_grid_is_the_whole_lattice_corners_first(r, points):
    grid_P3 = simplex_grid(r)
    assert len(grid_P3) == points == (r + 1) * (r + 2) // 2
    np.testing.assert_allclose(grid_P3.sum(axis=1), 1.0, atol=1e-9)
    assert len({tuple(p) for p in grid_P3}) == points
    corners = {(1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)}
    assert {tuple(p) for p in grid_P3[:3]} == corners


def test_grid_of_resolution_two_has_the_edge_midpoints():
    assert {tuple(p) for p in simplex_grid(2)[3:]} == {(0.5, 0.5, 0.0), (0.5, 0.0, 0.5), (0.0, 0.5, 0.5)}


@pytest.mark.parametrize("n, r, points", [(1, 1, 1), (3, 2, 3), (4, 3, 6), (6, 3, 6), (7, 4, 10), (10, 4, 10)])
def test_grid_search_keeps_an_execution_weight_on_the_smallest_lattice_with_enough_points(n, r, points):
    """Held-out accuracy comes from the reward's execution component: a trial never drops it."""
    assert grid_resolution(n) == r
    trials = make_trials("grid", n)
    assert len(trials) == points == r * (r + 1) // 2
    assert all(t.execution_weight > 0 for t in trials)
    assert trials[0].weights == (0.0, 1.0, 0.0)
    assert len({t.weights for t in trials}) == points


def test_dirichlet_draws_never_round_the_execution_weight_away():
    points_N3 = dirichlet_points(2000, alpha=0.05, seed=0)  # mass on corners and edges
    assert (points_N3[:, 1] >= 1e-4).all()
    np.testing.assert_allclose(points_N3.sum(axis=1), 1.0, atol=1e-9)
    assert (points_N3 >= 0).all()


def test_lr_is_log_uniform_in_range_and_beta_uniform_and_weights_do_not_depend_on_them():
    plain = make_trials("dirichlet", 200, seed=1)
    tuned = make_trials("dirichlet", 200, seed=1, lr_range=(1e-5, 1e-2), beta_range=(0.0, 0.2))
    assert [t.weights for t in plain] == [t.weights for t in tuned]
    assert all(t.learning_rate is None and t.beta is None for t in plain)
    lrs = np.array([t.learning_rate for t in tuned])
    betas = np.array([t.beta for t in tuned])
    assert ((lrs >= 1e-5 * 0.9999) & (lrs <= 1e-2 * 1.0001)).all()
    assert ((betas >= 0.0) & (betas <= 0.2)).all()
    # log-uniform: about half the draws below the geometric midpoint (uniform would put ~5% there)
    below = float((lrs < math.sqrt(1e-5 * 1e-2)).mean())
    assert 0.35 < below < 0.65
    assert 0.35 < float((betas < 0.1).mean()) < 0.65


def test_bad_search_settings_are_errors_that_name_them():
    with pytest.raises(ValueError, match="unknown search 'random'"):
        make_trials("random", 3)
    with pytest.raises(ValueError, match="num_samples=0"):
        make_trials("dirichlet", 0)
    with pytest.raises(ValueError, match="alpha=-1"):
        make_trials("dirichlet", 3, alpha=-1)
    with pytest.raises(ValueError, match="learning-rate range"):
        make_trials("dirichlet", 3, lr_range=(1e-3, 1e-4))
    with pytest.raises(ValueError, match=r"trials \[5\]"):
        make_trials("grid", 3, extra_overrides={5: ["lora.r=8"]})


def test_each_trial_becomes_a_valid_recipe_with_its_weights():
    for spec in make_trials("grid", 6, lr_range=(1e-4, 1e-3), beta_range=(0.0, 0.1)):
        config = Config.load(RECIPE, spec.overrides())
        r = config.reward
        assert (r.syntax_weight, r.execution_weight, r.semantic_weight) == spec.weights
        assert config.learner.learning_rate == spec.learning_rate
        assert config.grpo.beta == spec.beta


def test_a_trial_override_applies_to_that_trial_only_and_invalid_ones_fail_on_load():
    specs = make_trials("dirichlet", 3, extra_overrides={1: ["learner.zero_stage=7"]})
    Config.load(RECIPE, specs[0].overrides())
    with pytest.raises(ConfigError, match="learner.zero_stage"):
        Config.load(RECIPE, specs[1].overrides())


def test_spec_round_trips_through_a_dict():
    spec = make_trials("dirichlet", 2, lr_range=(1e-4, 1e-3), extra_overrides={1: ["lora.r=8"]})[1]
    assert TrialSpec.from_dict(spec.to_dict()) == spec
