"""rl_sql/sql/mutate.py: every mutant kind appears on a query that has its site, and mutants differ."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlglot

from rl_sql.sql.mutate import MUTANT_KINDS, Mutant, mutate_query
from rl_sql.sql.schema import QueryParseError, parse_schema

CONTEXT = (
    "CREATE TABLE singer (singer_id INT, name TEXT, country TEXT, age INT, PRIMARY KEY (singer_id)); "
    "CREATE TABLE concert (concert_id INT, concert_name TEXT, year INT, singer_id INT, "
    "PRIMARY KEY (concert_id), FOREIGN KEY (singer_id) REFERENCES singer(singer_id))"
)
SCHEMA = parse_schema(CONTEXT)

# kind -> a query with a site for it (and what must appear in at least one mutant's text)
SITES: dict[str, tuple[str, str]] = {
    "column_swap": ("SELECT name FROM singer WHERE age > 20", "SELECT country FROM singer"),
    "comparison_op": ("SELECT name FROM singer WHERE age > 20", "age >= 20"),
    "literal": ("SELECT name FROM singer WHERE country = 'France' AND age > 20", "age > 21"),
    "drop_condition": ("SELECT name FROM singer WHERE country = 'France' AND age > 20", "WHERE age > 20"),
    "aggregate": ("SELECT max(age) FROM singer", "MIN(age)"),
    "drop_distinct": ("SELECT DISTINCT country FROM singer", "SELECT country FROM singer"),
    "order_by": ("SELECT name FROM singer ORDER BY age DESC LIMIT 1", "SELECT name FROM singer LIMIT 1"),
    "limit": ("SELECT name FROM singer ORDER BY age DESC LIMIT 3", "LIMIT 4"),
    "join_type": (
        "SELECT T1.name FROM singer AS T1 JOIN concert AS T2 ON T1.singer_id = T2.singer_id",
        "LEFT JOIN concert",
    ),
    "group_by": ("SELECT country, count(*) FROM singer GROUP BY country", "GROUP BY"),
    "set_operation": (
        "SELECT name FROM singer WHERE age > 30 UNION SELECT name FROM singer WHERE country = 'France'",
        "SELECT name FROM singer WHERE age > 30",
    ),
}


def _db(tmp_path: Path) -> str:
    path = tmp_path / "m.sqlite"
    conn = sqlite3.connect(path)
    for stmt in CONTEXT.split("; "):
        conn.execute(stmt)
    conn.executemany("INSERT INTO singer VALUES (?, ?, ?, ?)", [(1, "Ann", "France", 30), (2, "Bo", "Peru", 41)])
    conn.executemany("INSERT INTO concert VALUES (?, ?, ?, ?)", [(1, "Live", 2014, 1), (2, "Tour", 2015, 2)])
    conn.commit()
    conn.close()
    return str(path)


def test_sites_cover_every_kind() -> None:
    assert set(SITES) == set(MUTANT_KINDS)


@pytest.mark.parametrize("kind", MUTANT_KINDS)
def test_each_kind_is_produced_and_runs(kind: str, tmp_path: Path) -> None:
    sql, expected = SITES[kind]
    mutants = [m for m in mutate_query(sql, seed=0, schema=SCHEMA, max_per_kind=10) if m.kind == kind]
    assert mutants, f"no {kind} mutant for {sql}"
    assert any(expected in m.sql for m in mutants), [m.sql for m in mutants]
    original = sqlglot.parse_one(sql, read="sqlite").sql(dialect="sqlite")
    conn = sqlite3.connect(_db(tmp_path))
    for m in mutants:
        assert m.sql not in (sql, original)
        conn.execute(m.sql).fetchall()  # every mutant is valid SQLite on the schema


def test_mutants_are_distinct_deterministic_and_capped() -> None:
    sql = (
        "SELECT DISTINCT T1.name, count(*) FROM singer AS T1 JOIN concert AS T2 ON T1.singer_id = T2.singer_id "
        "WHERE T1.age > 20 AND (T1.country = \"France\" OR T2.concert_name LIKE '%Live%') "
        "GROUP BY T1.name HAVING count(*) >= 2 ORDER BY count(*) DESC LIMIT 3"
    )
    first = mutate_query(sql, seed=5, schema=SCHEMA, max_per_kind=2)
    assert first == mutate_query(sql, seed=5, schema=SCHEMA, max_per_kind=2)
    assert len({m.sql for m in first}) == len(first)
    counts = {k: sum(m.kind == k for m in first) for k in MUTANT_KINDS}
    assert max(counts.values()) <= 2
    assert {k for k, c in counts.items() if c} >= {"column_swap", "comparison_op", "literal", "drop_condition"}
    # other seeds choose other sites or alternatives
    others = {m for seed in range(6) for m in mutate_query(sql, seed=seed, schema=SCHEMA, max_per_kind=2)}
    assert len(others) > len(first)


def test_string_identifier_is_mutated_as_a_literal() -> None:
    mutants = mutate_query('SELECT name FROM singer WHERE country = "France"', seed=0, schema=SCHEMA)
    literal = [m for m in mutants if m.kind == "literal"]
    assert literal and all("'" in m.sql for m in literal)  # rewritten as a real string literal


def test_without_schema_no_column_swap_and_order_kept_without_limit() -> None:
    mutants = mutate_query("SELECT name FROM singer WHERE age > 20 ORDER BY age", seed=0)
    assert not [m for m in mutants if m.kind == "column_swap"]
    order = [m for m in mutants if m.kind == "order_by"]
    assert order and all("ORDER BY" in m.sql for m in order)  # flipped, never dropped without LIMIT


def test_query_without_sites_has_no_mutants() -> None:
    assert mutate_query("SELECT * FROM singer", seed=0) == []
    assert all(isinstance(m, Mutant) for m in mutate_query("SELECT count(*) FROM singer", seed=0, schema=SCHEMA))


def test_unparseable_query_raises() -> None:
    with pytest.raises(QueryParseError):
        mutate_query("SELECT FROM WHERE (", seed=0)
