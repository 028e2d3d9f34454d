"""Spider hardness buckets (rl_sql/eval/hardness.py); agreement with the reference over whole
datasets is in test_official_agreement.py."""

from __future__ import annotations

import pytest

from rl_sql.eval.hardness import Components, HardnessError, classify, count_components, spider_hardness


@pytest.mark.parametrize(
    ("sql", "components", "hardness"),
    [
        ("SELECT count(*) FROM head", (0, 0, 0), "easy"),
        ("SELECT name FROM head WHERE age > 50", (1, 0, 0), "easy"),
        ("SELECT name, age FROM head WHERE age > 50", (1, 0, 1), "medium"),  # two columns
        ("SELECT name FROM head WHERE age < 50 OR age > 60", (2, 0, 1), "medium"),  # WHERE + OR; two conditions
        ("SELECT name FROM head WHERE age > (SELECT avg(age) FROM head)", (1, 1, 0), "hard"),
        ("SELECT name FROM head WHERE born_state NOT IN (SELECT born_state FROM head WHERE age > 60)", (1, 1, 0), "hard"),
        (
            "SELECT T1.name FROM head AS T1 JOIN management AS T2 ON T1.head_id = T2.head_id "
            "WHERE T2.temporary_acting = 'Yes' GROUP BY T1.name ORDER BY count(*) DESC LIMIT 1",
            (5, 0, 0),  # WHERE, GROUP BY, ORDER BY, LIMIT, one JOIN
            "extra",
        ),
        ("SELECT name FROM head WHERE name LIKE '%a%' INTERSECT SELECT name FROM head WHERE age > 50", (2, 1, 0), "extra"),
    ],
)
def test_components_and_bucket(sql, components, hardness):
    assert count_components(sql) == Components(*components)
    assert spider_hardness(sql) == hardness


def test_having_connectives_count_as_aggregates_as_in_the_reference():
    # select count(*) is one aggregate; the reference also counts HAVING's AND -> two -> others = 1
    sql = "SELECT count(*) FROM head GROUP BY born_state HAVING min(age) > 40 AND max(age) < 70"
    assert count_components(sql) == Components(1, 0, 1)
    assert spider_hardness(sql) == "medium"


def test_an_or_after_a_column_comparison_is_not_counted_as_in_the_reference():
    assert count_components("SELECT name FROM head WHERE age < head_id OR age > 60") == Components(1, 0, 0)
    # a double-quoted value is a string, not a column: the OR counts
    assert count_components('SELECT name FROM head WHERE name = "x" OR age > 60') == Components(2, 0, 1)


def test_the_thresholds():
    assert classify(Components(1, 0, 0)) == "easy"
    assert classify(Components(1, 0, 2)) == "medium"
    assert classify(Components(2, 0, 1)) == "medium"
    assert classify(Components(2, 0, 3)) == "hard"
    assert classify(Components(3, 0, 2)) == "hard"
    assert classify(Components(1, 1, 0)) == "hard"
    assert classify(Components(4, 0, 0)) == "extra"
    assert classify(Components(0, 2, 0)) == "extra"


@pytest.mark.parametrize("sql", ["DROP TABLE head", "SELECT FROM WHERE (", "UPDATE head SET age = 1"])
def test_what_is_not_a_select_has_no_hardness(sql):
    with pytest.raises(HardnessError):
        spider_hardness(sql)
