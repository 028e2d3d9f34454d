from rl_sql.data.example import SqlExample
from rl_sql.engine.sampler import PromptSampler


def _examples(n):
    return [SqlExample(id=str(i), question=f"q{i}", context="CREATE TABLE t (a INT)", answer="SELECT a FROM t") for i in range(n)]


def test_an_epoch_visits_every_example_once():
    s = PromptSampler(_examples(10), seed=1)
    ids = [e.id for e in s.next_batch(10)]
    assert sorted(ids, key=int) == [str(i) for i in range(10)]
    assert s.epochs_done == 1.0


def test_resume_continues_with_no_prompt_lost_or_repeated():
    full = PromptSampler(_examples(7), seed=3)
    expected = [e.id for e in full.next_batch(20)]
    first = PromptSampler(_examples(7), seed=3)
    got = [e.id for e in first.next_batch(9)]
    second = PromptSampler(_examples(7), seed=3)
    second.load_state_dict(first.state_dict())
    got += [e.id for e in second.next_batch(11)]
    assert got == expected


def test_epochs_are_reshuffled():
    s = PromptSampler(_examples(30), seed=0)
    assert [e.id for e in s.next_batch(30)] != [e.id for e in s.next_batch(30)]
