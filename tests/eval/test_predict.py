"""Majority vote by execution result and the prediction loop (rl_sql/eval/predict.py); generation
through real models is in test_eval_cli.py."""

from __future__ import annotations

import pytest

from rl_sql.data.spider import EMBEDDED_SPIDER_DIR
from rl_sql.data.example import SqlExample
from rl_sql.eval.predict import majority_vote, predict
from rl_sql.eval.spider_eval import SpiderJudge

DB = str(EMBEDDED_SPIDER_DIR / "database" / "department_management" / "department_management.sqlite")


@pytest.fixture(scope="module")
def judge():
    with SpiderJudge() as j:
        yield j


def _vote(judge, sqls):
    return majority_vote(sqls, [judge.run_prediction([DB], s) if s is not None else None for s in sqls])


def test_the_largest_class_of_equal_results_wins(judge):
    sqls = [
        "SELECT name FROM head",  # its own class
        "SELECT name FROM head WHERE age > 60",
        "SELECT name FROM head WHERE age >= 61",  # same rows as the one before
        "SELECT nope FROM head",  # fails: no vote
        None,  # no SQL: no vote
        "SELECT name FROM head WHERE age > 60.5",  # same rows again
    ]
    assert _vote(judge, sqls) == (1, 3)


def test_ties_go_to_the_class_seen_first(judge):
    assert _vote(judge, ["SELECT age FROM head", "SELECT name FROM head", "SELECT name FROM head", "SELECT age FROM head"]) == (0, 2)


def test_row_order_separates_classes_only_when_both_samples_order(judge):
    asc, desc = "SELECT name FROM head ORDER BY age", "SELECT name FROM head ORDER BY age DESC"
    assert _vote(judge, [asc, desc, desc]) == (1, 2)
    assert _vote(judge, ["SELECT name FROM head", desc, asc]) == (0, 3)


def test_when_nothing_runs_the_first_sample_is_taken(judge):
    assert _vote(judge, [None, "SELECT nope FROM head"]) == (0, 0)
    with pytest.raises(ValueError):
        majority_vote([], [])


class _Scripted:
    """Returns fixed completions (the model is not what these tests are about)."""

    def __init__(self, completions: list[str]):
        self.completions = completions
        self.calls: list[tuple[int, int, float]] = []

    def generate(self, examples, n, temperature):
        self.calls.append((len(examples), n, temperature))
        return [self.completions[:n] for _ in examples]

    def close(self) -> None:
        pass


def test_predict_extracts_the_sql_and_votes(judge):
    example = SqlExample(id="x-0", question="q", context="", answer="SELECT 1", db_id="department_management", db_paths=(DB,))
    scripted = _Scripted([
        "```sql\nSELECT name FROM head\n```",
        "SQL: SELECT name FROM head WHERE age > 60;",
        "<sql>SELECT name FROM head WHERE age >= 61</sql>",
    ])
    greedy = predict([example] * 3, scripted, samples=1, temperature=0.0, judge=judge, databases=lambda e: e.db_paths, batch_size=2)
    assert [p.sql for p in greedy] == ["SELECT name FROM head"] * 3 and scripted.calls == [(2, 1, 0.0), (1, 1, 0.0)]
    [voted] = predict([example], scripted, samples=3, temperature=1.0, judge=judge, databases=lambda e: e.db_paths)
    assert voted.sql == "SELECT name FROM head WHERE age > 60" and voted.votes == 2 and voted.samples == 3
