"""Held-out and SFT/RL splits: no leakage of gold SQL, whole databases, determinism."""

from __future__ import annotations

import pytest

from rl_sql.data import (
    SqlExample,
    hold_out_paraphrases,
    load_embedded_spider,
    normalize_question,
    normalize_sql,
    paraphrase_pairs,
    split_by_database,
    split_examples,
    training_splits,
)


@pytest.fixture(scope="module")
def embedded():
    return load_embedded_spider()


def test_no_heldout_gold_sql_in_training(embedded):
    train, heldout = split_examples(embedded, 0.2, seed=3)
    assert len(train) + len(heldout) == len(embedded)
    assert not {normalize_sql(ex.answer) for ex in train} & {normalize_sql(ex.answer) for ex in heldout}
    assert 0.17 <= len(heldout) / len(embedded) <= 0.23


def test_paraphrases_with_same_sql_stay_together():
    examples = [
        SqlExample(id=f"e{i}", question=q, context="CREATE TABLE t (a INT)", answer=sql)
        for i, (q, sql) in enumerate([
            ("count t", "SELECT count(*) FROM t"),
            ("how many rows in t", 'select  COUNT(*)  from t ;'),
            ("a values", "SELECT a FROM t"),
            ("list a", "SELECT a FROM t"),
        ])
    ]
    for seed in range(10):
        train, heldout = split_examples(examples, 0.5, seed=seed)
        assert sorted(len({normalize_sql(e.answer) for e in side}) for side in (train, heldout)) == [1, 1]


def test_split_is_deterministic_and_seed_dependent(embedded):
    a = split_examples(embedded, 0.1, seed=0)[1]
    b = split_examples(embedded, 0.1, seed=0)[1]
    c = split_examples(embedded, 0.1, seed=1)[1]
    assert [e.id for e in a] == [e.id for e in b]
    assert {e.id for e in a} != {e.id for e in c}


def test_split_by_database_holds_out_whole_databases(embedded):
    train, heldout = split_by_database(embedded, 0.2, seed=0)
    assert heldout and not {e.db_id for e in train} & {e.db_id for e in heldout}


def test_split_by_database_needs_db_ids():
    ex = SqlExample(id="x", question="q", context="CREATE TABLE t (a INT)", answer="SELECT a FROM t")
    with pytest.raises(ValueError, match="no db_id"):
        split_by_database([ex], 0.5)


def test_zero_fraction_keeps_everything_in_training(embedded):
    train, heldout = split_examples(embedded, 0.0)
    assert len(train) == len(embedded) and heldout == []


def test_rl_fraction_keeps_grpo_questions_out_of_sft(embedded):
    sft, rl, heldout, _ = training_splits(embedded, 0.1, rl_fraction=0.5, seed=0)
    assert heldout == split_examples(embedded, 0.1, seed=0)[1]  # the held-out split does not move
    assert len(sft) + len(rl) + len(heldout) == len(embedded)
    assert 0.45 <= len(rl) / (len(sft) + len(rl)) <= 0.55
    gold = [{normalize_sql(e.answer) for e in side} for side in (sft, rl, heldout)]
    assert not gold[0] & gold[1] and not gold[0] & gold[2] and not gold[1] & gold[2]


def test_zero_rl_fraction_shares_the_training_split(embedded):
    sft, rl, heldout, _ = training_splits(embedded, 0.1, rl_fraction=0.0, seed=0)
    assert [e.id for e in sft] == [e.id for e in rl] == [e.id for e in split_examples(embedded, 0.1, seed=0)[0]]


def test_rl_fraction_that_empties_a_side_is_a_clear_error():
    examples = [SqlExample(id="x", question="q", context="CREATE TABLE t (a INT)", answer="SELECT a FROM t"),
                SqlExample(id="y", question="r", context="CREATE TABLE t (a INT)", answer="SELECT a FROM t")]
    with pytest.raises(ValueError, match="rl_fraction"):
        training_splits(examples, 0.0, rl_fraction=0.5)


def test_paraphrase_pairs_share_the_query_and_database_and_differ_in_wording(embedded):
    pairs = paraphrase_pairs(embedded)
    assert len(pairs) > 500  # Spider words most queries twice
    for a, b in pairs:
        assert a.db_id == b.db_id and normalize_sql(a.answer) == normalize_sql(b.answer)
        assert a.question != b.question
    ids = [ex.id for pair in pairs for ex in pair]
    assert len(ids) == len(set(ids))


def test_paraphrase_pairs_keep_databases_apart():
    one = SqlExample(id="1", question="How many singers?", answer="SELECT count(*) FROM singer", context="", db_id="a")
    two = SqlExample(id="2", question="Count the singers.", answer="select count(*) from singer", context="", db_id="b")
    three = SqlExample(id="3", question="Number of singers?", answer="SELECT count(*) FROM singer", context="", db_id="a")
    again = SqlExample(id="4", question="how many  SINGERS?", answer="SELECT count(*) FROM singer", context="", db_id="a")
    assert paraphrase_pairs([one, two, three]) == [(one, three)]
    assert paraphrase_pairs([one, again, two, three]) == [(one, three)]  # the same wording twice is no pair
    assert paraphrase_pairs([one, two]) == []


def test_hold_out_paraphrases_keeps_one_wording_of_each_query_for_grpo():
    one = SqlExample(id="1", question="How many singers?", answer="SELECT count(*) FROM singer", context="", db_id="a")
    two = SqlExample(id="2", question="Count the singers.", answer="select count(*) from singer", context="", db_id="a")
    three = SqlExample(id="3", question="Number of singers?", answer="SELECT count(*) FROM singer", context="", db_id="a")
    alone = SqlExample(id="4", question="List the names.", answer="SELECT name FROM singer", context="", db_id="a")
    kept, out = hold_out_paraphrases([one, alone, two, three])
    assert out == [two]  # a group of three keeps two wordings; a query worded once stays
    assert kept == [one, alone, three]


def test_paraphrase_heldout_moves_grpo_rewordings_only(embedded):
    base = training_splits(embedded, 0.1, rl_fraction=0.5, seed=0)
    sft, rl, heldout, para = training_splits(embedded, 0.1, rl_fraction=0.5, seed=0, paraphrase_heldout=True)
    assert sft == base.sft and heldout == base.heldout and base.paraphrases == []
    assert len(para) > 100 and sorted(e.id for e in rl + para) == sorted(e.id for e in base.rl)
    assert not {e.id for e in rl} & {e.id for e in para}
    # every held-out rewording has its gold query, over its database, in another wording among the GRPO prompts ...
    grpo = {}
    for e in rl:
        grpo.setdefault((e.db_id, normalize_sql(e.answer)), set()).add(normalize_question(e.question))
    for e in para:
        wordings = grpo[(e.db_id, normalize_sql(e.answer))]
        assert wordings - {normalize_question(e.question)}, e
    # ... and never as an SFT target
    assert not {normalize_sql(e.answer) for e in sft} & {normalize_sql(e.answer) for e in para}


def test_paraphrase_heldout_needs_an_rl_split_and_pairs(embedded):
    with pytest.raises(ValueError, match="rl_fraction > 0"):
        training_splits(embedded, 0.1, rl_fraction=0.0, paraphrase_heldout=True)
    examples = [SqlExample(id=str(i), question=f"q{i}", context="", answer=f"SELECT {i}", db_id="a") for i in range(4)]
    with pytest.raises(ValueError, match="paraphrase_heldout"):
        training_splits(examples, 0.0, rl_fraction=0.5, paraphrase_heldout=True)
