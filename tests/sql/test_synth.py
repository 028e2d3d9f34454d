"""rl_sql/sql/synth.py: populated test databases for schema-only examples.

Properties one per test (determinism, cache, keys, literals, failures), then the quality bar the
reward depends on: on inline fixtures (always available) and on the embedded Spider subset (when
the package ships it), the gold is informative on >= 95% of examples and >= 95% of the mutants
that an oracle of other random databases (and the real database) shows to be wrong are caught.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from rl_sql.sql.compare import query_has_order_by, results_match
from rl_sql.sql.mutate import mutate_query
from rl_sql.sql.sandbox import execute_sql
from rl_sql.sql.schema import Schema, parse_schema, schema_from_sqlite
from rl_sql.sql.synth import (
    POOL_PROFILES,
    SYNTH_MUTANT_SEED,
    analyze_gold,
    fill_database,
    informative,
    make_plan,
    random_profile,
    synthesize_databases,
    write_database,
)

REPO = Path(__file__).resolve().parents[2]
EMBEDDED = REPO / "rl_sql" / "data" / "embedded" / "spider"

SPIDER_LIKE = (
    "CREATE TABLE stadium (stadium_id INT, location TEXT, name TEXT, capacity INT, highest INT, "
    "average INT, PRIMARY KEY (stadium_id)); "
    "CREATE TABLE singer (singer_id INT, name TEXT, country TEXT, song_name TEXT, song_release_year TEXT, "
    "age INT, is_male bool, PRIMARY KEY (singer_id)); "
    "CREATE TABLE concert (concert_id INT, concert_name TEXT, theme TEXT, stadium_id TEXT, year TEXT, "
    "PRIMARY KEY (concert_id), FOREIGN KEY (stadium_id) REFERENCES stadium(stadium_id)); "
    "CREATE TABLE singer_in_concert (concert_id INT, singer_id TEXT, PRIMARY KEY (concert_id, singer_id), "
    "FOREIGN KEY (concert_id) REFERENCES concert(concert_id), FOREIGN KEY (singer_id) REFERENCES singer(singer_id))"
)
CREATE_CONTEXT_STYLE = "CREATE TABLE table_name_50 (venue VARCHAR, away_team VARCHAR, crowd VARCHAR, date VARCHAR)"
HR_LIKE = (
    "CREATE TABLE departments (department_id INTEGER, department_name VARCHAR(30), manager_id INTEGER, "
    "PRIMARY KEY (department_id)); "
    "CREATE TABLE employees (employee_id INTEGER, first_name VARCHAR(20), salary DECIMAL(8,2), "
    "commission_pct DECIMAL(2,2), hire_date DATE, department_id INTEGER, manager_id INTEGER, "
    "PRIMARY KEY (employee_id), FOREIGN KEY (department_id) REFERENCES departments(department_id), "
    "FOREIGN KEY (manager_id) REFERENCES employees(employee_id))"
)

FIXTURES: list[tuple[str, str]] = [
    (SPIDER_LIKE, "SELECT count(*) FROM singer WHERE age > 40"),
    (SPIDER_LIKE, "SELECT name, country, age FROM singer ORDER BY age DESC"),
    (SPIDER_LIKE, 'SELECT avg(age), min(age), max(age) FROM singer WHERE country = "France"'),
    (SPIDER_LIKE, "SELECT DISTINCT country FROM singer WHERE age > 20"),
    (SPIDER_LIKE, "SELECT name FROM stadium WHERE capacity BETWEEN 5000 AND 10000"),
    (SPIDER_LIKE, "SELECT T2.name, count(*) FROM concert AS T1 JOIN stadium AS T2 ON T1.stadium_id = T2.stadium_id GROUP BY T1.stadium_id"),
    (SPIDER_LIKE, "SELECT name FROM stadium WHERE stadium_id NOT IN (SELECT stadium_id FROM concert)"),
    (SPIDER_LIKE, "SELECT T2.concert_name FROM singer_in_concert AS T1 JOIN concert AS T2 ON T1.concert_id = T2.concert_id GROUP BY T1.concert_id HAVING count(*) >= 2"),
    (SPIDER_LIKE, "SELECT country FROM singer WHERE age > 40 INTERSECT SELECT country FROM singer WHERE age < 30"),
    (SPIDER_LIKE, "SELECT name FROM singer WHERE song_name LIKE '%Hey%'"),
    (SPIDER_LIKE, "SELECT song_name FROM singer WHERE age > (SELECT avg(age) FROM singer)"),
    (SPIDER_LIKE, "SELECT T3.name FROM singer_in_concert AS T1 JOIN concert AS T2 ON T1.concert_id = T2.concert_id JOIN singer AS T3 ON T1.singer_id = T3.singer_id WHERE T2.year = 2014"),
    (SPIDER_LIKE, "SELECT country, count(*) FROM singer GROUP BY country ORDER BY count(*) DESC LIMIT 1"),
    (CREATE_CONTEXT_STYLE, 'SELECT venue FROM table_name_50 WHERE away_team = "collingwood"'),
    (CREATE_CONTEXT_STYLE, 'SELECT COUNT(crowd) FROM table_name_50 WHERE venue = "mcg" AND date = "17 may 1952"'),
    (CREATE_CONTEXT_STYLE, 'SELECT MAX(crowd) FROM table_name_50 WHERE away_team = "geelong"'),
    (HR_LIKE, "SELECT first_name FROM employees WHERE salary > 8000 AND department_id = 50"),
    (HR_LIKE, "SELECT T1.first_name FROM employees AS T1 JOIN departments AS T2 ON T1.department_id = T2.department_id WHERE T2.department_name = 'Finance'"),
    (HR_LIKE, "SELECT department_id FROM employees GROUP BY department_id HAVING avg(salary) > 9000"),
    (HR_LIKE, "SELECT first_name FROM employees WHERE hire_date < '2002-06-21' ORDER BY salary LIMIT 3"),
    (HR_LIKE, "SELECT T1.first_name FROM employees AS T1 JOIN employees AS T2 ON T1.manager_id = T2.employee_id WHERE T2.first_name = 'Steven'"),
]


def _rows(path: str) -> dict[str, list[tuple]]:
    conn = sqlite3.connect(path)
    try:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return {n: conn.execute(f'SELECT * FROM "{n}"').fetchall() for n in names}
    finally:
        conn.close()


def test_deterministic_for_a_seed(tmp_path: Path) -> None:
    context, gold = FIXTURES[5]
    a = synthesize_databases(context, gold, k=3, seed=7, cache_dir=tmp_path / "a")
    b = synthesize_databases(context, gold, k=3, seed=7, cache_dir=tmp_path / "b")
    c = synthesize_databases(context, gold, k=3, seed=8, cache_dir=tmp_path / "c")
    assert a.error is None and len(a.db_paths) == 3
    assert [_rows(p) for p in a.db_paths] == [_rows(p) for p in b.db_paths]
    assert [_rows(p) for p in a.db_paths] != [_rows(p) for p in c.db_paths]


def test_deterministic_across_processes_with_other_hash_seeds(tmp_path: Path) -> None:
    """Ray actors on other machines must build the same databases for the same key."""
    context, gold = FIXTURES[11]
    script = (
        "import sys, json, sqlite3\n"
        "from rl_sql.sql.synth import synthesize_databases\n"
        "r = synthesize_databases(sys.argv[1], sys.argv[2], k=2, seed=3, cache_dir=sys.argv[3])\n"
        "out = []\n"
        "for p in r.db_paths:\n"
        "    c = sqlite3.connect(p)\n"
        "    out.append({t: c.execute(f'SELECT * FROM \"{t}\"').fetchall() for (t,) in c.execute(\"SELECT name FROM sqlite_master WHERE type='table'\")})\n"
        "print(json.dumps(out))\n"
    )
    outputs = []
    for hash_seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=hash_seed)
        proc = subprocess.run(
            [sys.executable, "-c", script, context, gold, str(tmp_path / hash_seed)],
            capture_output=True, text=True, env=env, cwd=REPO, timeout=120, check=True,
        )
        outputs.append(json.loads(proc.stdout))
    assert outputs[0] == outputs[1]


def test_cache_hit_returns_same_paths_without_regenerating(tmp_path: Path) -> None:
    context, gold = FIXTURES[0]
    first = synthesize_databases(context, gold, k=2, seed=0, cache_dir=tmp_path)
    assert first.stats["cached"] is False
    stamps = [os.stat(p).st_mtime_ns for p in first.db_paths]
    again = synthesize_databases(context, gold, k=2, seed=0, cache_dir=tmp_path)
    assert again.stats["cached"] is True
    assert again.db_paths == first.db_paths and again.gold_nonempty == first.gold_nonempty
    assert [os.stat(p).st_mtime_ns for p in again.db_paths] == stamps
    entries = [p for p in tmp_path.iterdir()]
    assert len(entries) == 1 and (entries[0] / "result.json").is_file()  # no temporary folder left
    other = synthesize_databases(context, gold, k=3, seed=0, cache_dir=tmp_path)
    assert other.stats["cached"] is False and other.db_paths[0] != first.db_paths[0]


def test_broken_cache_entry_is_rebuilt(tmp_path: Path) -> None:
    context, gold = FIXTURES[0]
    first = synthesize_databases(context, gold, k=2, seed=0, cache_dir=tmp_path)
    os.remove(first.db_paths[1])
    rebuilt = synthesize_databases(context, gold, k=2, seed=0, cache_dir=tmp_path)
    assert rebuilt.stats["cached"] is False and all(os.path.isfile(p) for p in rebuilt.db_paths)


def test_concurrent_writers_agree(tmp_path: Path) -> None:
    context, gold = FIXTURES[7]
    results = []

    def work() -> None:
        results.append(synthesize_databases(context, gold, k=3, seed=1, cache_dir=tmp_path))

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({r.db_paths for r in results}) == 1
    assert all(os.path.isfile(p) for p in results[0].db_paths)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_gold_informative_and_literals_present(tmp_path: Path) -> None:
    context = SPIDER_LIKE
    gold = "SELECT name FROM singer WHERE country = 'Zanzibar' AND song_name LIKE '%lulla%' AND age >= 57"
    result = synthesize_databases(context, gold, k=3, seed=0, cache_dir=tmp_path)
    assert result.error is None and result.gold_nonempty
    runs = [execute_sql(p, gold) for p in result.db_paths]
    assert any(informative(r) for r in runs)
    values = [v for p in result.db_paths for row in _rows(p)["singer"] for v in row]
    assert "Zanzibar" in values and 57 in values
    assert any(isinstance(v, str) and "lulla" in v and v != "lulla" for v in values)  # LIKE core inside text


def test_keys_are_respected(tmp_path: Path) -> None:
    schema = parse_schema(SPIDER_LIKE + "; " + HR_LIKE)
    gold = (
        "SELECT T3.name FROM singer_in_concert AS T1 JOIN concert AS T2 ON T1.concert_id = T2.concert_id "
        "JOIN singer AS T3 ON T1.singer_id = T3.singer_id JOIN employees AS E ON E.employee_id = T3.age"
    )
    result = synthesize_databases(schema.to_context(), gold, k=3, seed=0, cache_dir=tmp_path)
    assert result.error is None
    for path in result.db_paths:
        data = _rows(path)
        for table in schema.tables:
            rows = data[table.name]
            names = [c.name for c in table.columns]
            if table.primary_key:
                keys = [tuple(r[names.index(c)] for c in table.primary_key) for r in rows]
                assert len(keys) == len(set(keys)), f"duplicate primary key in {table.name}"
                assert all(None not in k for k in keys)
            for fk in table.foreign_keys:
                ref_table, ref_col = schema.resolve_fk(fk)
                # compared the way SQLite joins them (concert.stadium_id TEXT -> stadium INT)
                orphans = execute_sql(
                    path,
                    f'SELECT count(*) FROM "{table.name}" WHERE "{fk.column}" IS NOT NULL '
                    f'AND "{fk.column}" NOT IN (SELECT "{ref_col}" FROM "{ref_table}")',
                )
                assert orphans.rows == ((0,),), f"{table.name}.{fk.column} -> {ref_table}.{ref_col}"
                assert execute_sql(path, f'SELECT count(*) FROM "{table.name}" WHERE "{fk.column}" IS NOT NULL').rows[0][0] > 0


def test_bad_data_returns_an_error_instead_of_raising(tmp_path: Path) -> None:
    bad_context = synthesize_databases("this is not DDL", "SELECT 1", cache_dir=tmp_path)
    assert bad_context.error_kind == "schema" and "CREATE TABLE" in bad_context.error
    assert bad_context.db_paths == () and not bad_context.gold_nonempty
    missing = synthesize_databases(CREATE_CONTEXT_STYLE, "SELECT nope FROM table_name_50", cache_dir=tmp_path)
    assert missing.error_kind == "gold_error" and "no such column" in missing.error
    not_select = synthesize_databases(CREATE_CONTEXT_STYLE, "DELETE FROM table_name_50", cache_dir=tmp_path)
    assert not_select.error_kind == "gold_error"
    # failures are cached too
    assert synthesize_databases("this is not DDL", "SELECT 1", cache_dir=tmp_path).stats["cached"] is True
    with pytest.raises(ValueError):
        synthesize_databases(CREATE_CONTEXT_STYLE, "SELECT 1", k=0, cache_dir=tmp_path)


def test_gold_sqlglot_cannot_parse_still_gets_databases(tmp_path: Path) -> None:
    gold = "SELECT CAST(crowd AS unsigned big int) FROM table_name_50"  # valid SQLite, not for sqlglot
    result = synthesize_databases(CREATE_CONTEXT_STYLE, gold, k=2, cache_dir=tmp_path)
    assert result.error is None and len(result.db_paths) == 2
    assert result.stats["gold_parsed"] is False and result.stats["mutants"] == 0


def test_cache_dir_expands_user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    result = synthesize_databases(CREATE_CONTEXT_STYLE, FIXTURES[13][1], k=1, cache_dir="~/synth")
    assert result.db_paths[0].startswith(str(tmp_path / "synth"))


# ---------------------------------------------------------------------------------------------
# Quality: informative golds and caught mutants


def _oracle(schema: Schema, gold: str, folder: Path, count: int, seed: int) -> list[str]:
    """Fresh random databases (seeds other than the synthesizer's) to judge mutant equivalence."""
    plan = make_plan(schema, analyze_gold(gold, schema), seed)
    rng = random.Random(seed)
    paths = []
    for i in range(count):
        profile = POOL_PROFILES[i] if i < len(POOL_PROFILES) else random_profile(rng)
        path = folder / f"oracle_{seed}_{i}.sqlite"
        write_database(path, schema, fill_database(plan, profile, seed * 1000 + i))
        paths.append(str(path))
    return paths


def _differs(gold_res, res, order_matters: bool) -> bool:
    return not res.ok or not results_match(gold_res, res, order_matters=order_matters)


def _judge(context: str, gold: str, real_db: str | None, folder: Path, seed: int, oracle_dbs: int) -> tuple[bool, int, int]:
    """(gold informative on a synthesized db, non-equivalent mutants, of those caught)."""
    schema = schema_from_sqlite(real_db) if real_db else parse_schema(context)
    synth = synthesize_databases(context, gold, k=3, seed=0, cache_dir=folder / "cache")
    assert synth.error is None, synth.error
    order = query_has_order_by(gold)
    golds = [execute_sql(p, gold) for p in synth.db_paths]
    oracle = [p for p in ([real_db] if real_db else []) + _oracle(schema, gold, folder, oracle_dbs, seed)]
    oracle_golds = [execute_sql(p, gold) for p in oracle]
    non_equivalent = caught = 0
    assert seed != SYNTH_MUTANT_SEED
    for mutant in mutate_query(gold, seed=seed, schema=schema):
        if not any(g.ok and _differs(g, execute_sql(p, mutant.sql), order) for p, g in zip(oracle, oracle_golds)):
            continue
        non_equivalent += 1
        caught += any(_differs(g, execute_sql(p, mutant.sql), order) for p, g in zip(synth.db_paths, golds))
    return any(informative(g) for g in golds), non_equivalent, caught


def test_quality_on_inline_fixtures(tmp_path: Path) -> None:
    informative_n = non_eq = caught = 0
    for i, (context, gold) in enumerate(FIXTURES):
        folder = tmp_path / str(i)
        folder.mkdir()
        ok, n, c = _judge(context, gold, None, folder, seed=1000 + i, oracle_dbs=15)
        informative_n += ok
        non_eq += n
        caught += c
    assert informative_n >= 0.95 * len(FIXTURES), f"gold informative on {informative_n}/{len(FIXTURES)}"
    assert non_eq >= 3 * len(FIXTURES)  # the check has teeth
    assert caught >= 0.95 * non_eq, f"caught {caught}/{non_eq} non-equivalent mutants"


@pytest.mark.skipif(not (EMBEDDED / "train.json").is_file(), reason="embedded Spider subset not in the package")
def test_quality_on_embedded_spider_subset(tmp_path: Path) -> None:
    examples = json.loads((EMBEDDED / "train.json").read_text())
    rng = random.Random(0)
    picked = rng.sample(range(len(examples)), min(60, len(examples)))
    informative_n = measured = non_eq = caught = 0
    for i in picked:
        gold, db_id = examples[i]["query"], examples[i]["db_id"]
        real_db = EMBEDDED / "database" / db_id / f"{db_id}.sqlite"
        if not real_db.is_file() or not execute_sql(str(real_db), gold).ok:
            continue
        folder = tmp_path / str(i)
        folder.mkdir()
        context = schema_from_sqlite(real_db).to_context()
        ok, n, c = _judge(context, gold, str(real_db), folder, seed=2000 + i, oracle_dbs=10)
        measured += 1
        informative_n += ok
        non_eq += n
        caught += c
    assert measured >= 50
    assert informative_n >= 0.95 * measured, f"gold informative on {informative_n}/{measured}"
    assert caught >= 0.95 * non_eq, f"caught {caught}/{non_eq} non-equivalent mutants"
