"""Which Spider dev questions a training run evaluates (the embedded copy: 972 questions, the 62
of wta_1, indexes 429-490, are skipped because that database is missing)."""

from rl_sql.engine.dev_eval import first_dev_questions
from rl_sql.eval.run import spider_dev_dir, spider_dev_set


def _dev():
    root, origin = spider_dev_dir(None)
    return spider_dev_set(root, origin)


def test_first_questions_in_dev_order(monkeypatch):
    monkeypatch.delenv("RL_SQL_SPIDER_DIR", raising=False)
    chosen = first_dev_questions(_dev(), 300)
    assert [e.id for e in chosen.examples] == [f"spider-dev-{i}" for i in range(300)]
    assert chosen.skipped == []  # wta_1's questions come later


def test_counting_skips_only_the_missing_questions_it_passed(monkeypatch):
    monkeypatch.delenv("RL_SQL_SPIDER_DIR", raising=False)
    chosen = first_dev_questions(_dev(), 430)
    assert chosen.examples[-1].id == "spider-dev-491" and len(chosen.examples) == 430
    assert sorted(int(s.id.rsplit("-", 1)[1]) for s in chosen.skipped) == list(range(429, 491))
    everything = first_dev_questions(_dev(), 5000)
    assert len(everything.examples) == 972 and len(everything.skipped) == 62
