import pytest

from rl_sql.eval.stats import bootstrap_ci, paired_difference_ci


def test_ci_contains_the_accuracy_and_narrows_with_more_examples():
    acc, lo, hi = bootstrap_ci([True, False] * 10)
    acc2, lo2, hi2 = bootstrap_ci([True, False] * 500)
    assert lo <= acc == 0.5 <= hi and lo2 <= acc2 <= hi2
    assert hi2 - lo2 < hi - lo


def test_paired_difference_excludes_zero_only_when_one_side_is_clearly_better():
    better = [True] * 60 + [False] * 40
    worse = [True] * 30 + [False] * 70
    diff, lo, hi = paired_difference_ci(better, worse)
    assert diff == pytest.approx(0.3) and lo > 0
    _, lo_same, hi_same = paired_difference_ci(better, better[::-1])
    assert lo_same <= 0 <= hi_same


def test_mismatched_lists_are_an_error():
    with pytest.raises(ValueError, match="equal"):
        paired_difference_ci([True], [True, False])
