"""rl_sql.sql.compare: Spider and BIRD result matching, one rule per test."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from sql_fixture_db import build_db

from rl_sql.sql.compare import _order_by_at_depth_zero, query_has_order_by, results_match
from rl_sql.sql.sandbox import execute_sql
from rl_sql.sql.types import ErrorKind, ExecResult

EMBEDDED_TRAIN = Path(__file__).resolve().parents[2] / "rl_sql" / "data" / "embedded" / "spider" / "train.json"


def res(*rows: tuple, columns: tuple[str, ...] | None = None) -> ExecResult:
    width = len(rows[0]) if rows else 0
    return ExecResult(rows=tuple(rows), columns=columns or tuple(f"c{i}" for i in range(width)))


def failed(kind: ErrorKind = ErrorKind.RUNTIME) -> ExecResult:
    return ExecResult(error=kind, message="boom")


def spider(gold: ExecResult, pred: ExecResult, order_matters: bool = False) -> bool:
    return results_match(gold, pred, order_matters=order_matters, mode="spider")


# ----------------------------------------------------------------------------- Spider rules
def test_identical_results_match() -> None:
    assert spider(res((1, "a"), (2, "b")), res((1, "a"), (2, "b")))


def test_failed_prediction_never_matches() -> None:
    assert not spider(res((1,)), failed())


def test_failed_gold_never_matches_even_a_failure() -> None:
    assert not spider(failed(ErrorKind.TIMEOUT), failed(ErrorKind.TIMEOUT))


def test_two_empty_results_match_whatever_their_columns() -> None:
    assert spider(ExecResult(columns=("a",)), ExecResult(columns=("x", "y", "z")))


def test_empty_and_nonempty_do_not_match() -> None:
    assert not spider(res((1,)), ExecResult(columns=("a",)))


def test_different_row_counts_do_not_match() -> None:
    assert not spider(res((1,), (1,)), res((1,)))


def test_different_column_counts_do_not_match() -> None:
    assert not spider(res((1, 2)), res((1, 2, 2)))


def test_column_names_do_not_matter() -> None:
    assert spider(res((1,), columns=("count(*)",)), res((1,), columns=("n",)))


def test_permuted_columns_match() -> None:
    assert spider(res((1, "a", 2.5), (2, "b", 3.5)), res(("a", 2.5, 1), ("b", 3.5, 2)))


def test_permuted_columns_must_keep_rows_together() -> None:
    # Each column holds the same values, but no permutation rebuilds the gold rows.
    assert not spider(res((1, "a"), (2, "b")), res(("a", 2), ("b", 1)))


def test_row_order_is_ignored_without_order_by() -> None:
    assert spider(res((1,), (2,), (3,)), res((3,), (1,), (2,)))


def test_row_order_matters_with_order_by() -> None:
    assert not spider(res((1,), (2,)), res((2,), (1,)), order_matters=True)


def test_ordered_results_still_allow_permuted_columns() -> None:
    assert spider(res((1, "a"), (2, "b")), res(("a", 1), ("b", 2)), order_matters=True)


def test_duplicate_rows_count_as_a_multiset() -> None:
    assert not spider(res((1,), (1,), (2,)), res((1,), (2,), (2,)))


def test_integer_equals_real_of_the_same_value() -> None:
    assert spider(res((1,), (2,)), res((1.0,), (2.0,)))


def test_text_does_not_equal_a_number() -> None:
    assert not spider(res(("1",)), res((1,)))


def test_floats_have_no_tolerance() -> None:
    assert not spider(res((0.3,)), res((0.1 + 0.2,)))


def test_null_matches_only_null() -> None:
    assert spider(res((None,)), res((None,)))
    assert not spider(res((None,)), res((0,)))


def test_duplicate_columns_are_handled() -> None:
    assert spider(res((1, 1, 2), (3, 3, 4)), res((2, 1, 1), (4, 3, 3)))


def test_many_interchangeable_columns_are_fast_and_correct() -> None:
    # 12 columns with identical value multisets: pruning must avoid 12! permutations.
    rng = random.Random(0)
    width, height = 12, 40
    gold_rows = [tuple(rng.randrange(3) for _ in range(width)) for _ in range(height)]
    cols = list(zip(*gold_rows))
    order = list(range(width))
    rng.shuffle(order)
    pred_rows = list(zip(*[cols[j] for j in order]))
    rng.shuffle(pred_rows)
    assert spider(res(*gold_rows), res(*pred_rows))
    broken = [pred_rows[0][:-1] + ((pred_rows[0][-1] + 1) % 3,)] + pred_rows[1:]
    assert not spider(res(*gold_rows), res(*broken))


def test_unknown_mode_is_rejected() -> None:
    with pytest.raises(ValueError, match="mode"):
        results_match(res((1,)), res((1,)), order_matters=False, mode="exact")  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- BIRD rules
def bird(gold: ExecResult, pred: ExecResult) -> bool:
    return results_match(gold, pred, order_matters=False, mode="bird")


def test_bird_compares_rows_as_sets() -> None:
    assert bird(res((1,), (1,), (2,)), res((2,), (1,)))


def test_bird_keeps_column_order() -> None:
    assert not bird(res((1, "a")), res(("a", 1)))


def test_bird_failed_query_never_matches() -> None:
    assert not bird(res((1,)), failed())


def test_bird_empty_results_match() -> None:
    assert bird(ExecResult(columns=("a",)), ExecResult(columns=("a",)))


# ----------------------------------------------------------------------------- with real SQLite results
def test_gold_matches_an_equivalent_query_on_a_real_database(tmp_path: Path) -> None:
    db = str(build_db(tmp_path / "db.sqlite"))
    gold = execute_sql(db, "SELECT name, age FROM singer WHERE country = 'France'")
    pred = execute_sql(db, "SELECT age, name FROM singer WHERE country LIKE 'fr%' ORDER BY age DESC")
    assert spider(gold, pred)


def test_count_integer_matches_sum_of_reals_on_a_real_database(tmp_path: Path) -> None:
    db = str(build_db(tmp_path / "db.sqlite"))
    gold = execute_sql(db, "SELECT count(*) FROM singer")
    pred = execute_sql(db, "SELECT sum(1.0) FROM singer")
    assert spider(gold, pred)


# ----------------------------------------------------------------------------- ORDER BY detection
@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT a FROM t ORDER BY a", True),
        ("select a from t order by a desc limit 1", True),
        ("SELECT a FROM t", False),
        ("SELECT a FROM t UNION SELECT b FROM u ORDER BY 1", True),
        ("WITH c AS (SELECT a FROM t ORDER BY a) SELECT * FROM c", False),
        ("SELECT * FROM (SELECT a FROM t ORDER BY a)", False),
        ("SELECT a, row_number() OVER (ORDER BY a) FROM t", False),
        ("SELECT a FROM t WHERE b = 'order by'", False),
        ("(SELECT a FROM t ORDER BY a)", True),
    ],
)
def test_query_has_order_by_looks_at_the_top_level(sql: str, expected: bool) -> None:
    assert query_has_order_by(sql) is expected


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT a FROM t ORDER BY a", True),
        ("SELECT a FROM (SELECT a FROM t ORDER BY a) x", False),
        ("SELECT 'ORDER BY' FROM t -- order by\n", False),
        ("SELECT a FROM t ORDER\n  BY a", True),
    ],
)
def test_keyword_fallback_looks_at_depth_zero(sql: str, expected: bool) -> None:
    assert _order_by_at_depth_zero(sql) is expected


def test_unparsable_sql_falls_back_to_the_keyword_scan() -> None:
    assert query_has_order_by("SELECT a FROM t ORDER BY a WHERE ((") is True
    assert query_has_order_by("SELECT FROM (((( ORDER BY") is False


def test_sqlglot_and_keyword_scan_agree_on_embedded_spider_gold() -> None:
    if not EMBEDDED_TRAIN.is_file():
        pytest.skip(f"embedded Spider subset not built yet ({EMBEDDED_TRAIN})")
    queries = [example["query"] for example in json.loads(EMBEDDED_TRAIN.read_text())]
    assert queries
    assert [query_has_order_by(q) for q in queries] == [_order_by_at_depth_zero(q) for q in queries]
