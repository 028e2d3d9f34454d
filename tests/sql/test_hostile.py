"""Hostile completions through SqlSandbox (and the in-process guard): each one gets a typed
answer within the deadline + 1 s, leaves the database and its folder untouched, and
the sandbox answers a normal query afterwards."""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from sql_fixture_db import build_db

from rl_sql.sql.sandbox import MAX_SQL_BYTES, SqlSandbox, execute_sql
from rl_sql.sql.types import ErrorKind

TIMEOUT_S = 0.5
F, P, S, R, T, M = (
    ErrorKind.FORBIDDEN,
    ErrorKind.PARSE,
    ErrorKind.SCHEMA,
    ErrorKind.RUNTIME,
    ErrorKind.TIMEOUT,
    ErrorKind.TOO_MANY_ROWS,
)
OK = None  # harmless by design: the query may succeed (documented in sandbox.py)

_RUNAWAY = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r WHERE n < 0"
_PRINTF_BOMB = "SELECT " + " || ".join(["printf('%.*c', 2000000000, 'x')"] * 8)
_BIG_SORT = (
    "WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r LIMIT 3000000) "
    "SELECT count(*) FROM (SELECT x, randomblob(100) FROM r ORDER BY 2)"
)


@dataclass(frozen=True)
class Case:
    id: str
    sql: str  # "{dir}" is replaced by the database's folder
    expected: frozenset
    in_process: bool = True  # also safe to run with execute_sql (no process backstop needed)


def case(id: str, sql: str, *expected: ErrorKind | None, in_process: bool = True) -> Case:
    return Case(id, sql, frozenset(expected), in_process)


CASES = [
    case("attach-file", "ATTACH DATABASE '{dir}/evil.db' AS evil", F),
    case("attach-after-select", "SELECT 1; ATTACH DATABASE '{dir}/evil.db' AS evil", F),
    case("attach-memory", "ATTACH ':memory:' AS scratch", F),
    case("detach-main", "DETACH DATABASE main", F),
    case("load-extension", "SELECT load_extension('{dir}/evil.so')", F),
    case("load-extension-upper-case", "SELECT LOAD_EXTENSION('/tmp/evil.so', 'init')", F),
    case("pragma-journal-mode", "PRAGMA journal_mode = WAL", F),
    case("pragma-writable-schema", "PRAGMA writable_schema = ON", F),
    case("pragma-table-function", "SELECT * FROM pragma_table_info('singer')", F),
    case("insert", "INSERT INTO singer (name) VALUES ('x')", F),
    case("update", "UPDATE singer SET age = 0", F),
    case("delete", "DELETE FROM singer", F),
    case("drop", "DROP TABLE singer", F),
    case("create-table", "CREATE TABLE t (x)", F),
    case("create-temp-table", "CREATE TEMP TABLE t AS SELECT * FROM singer", F),
    case("create-virtual-table", "CREATE VIRTUAL TABLE v USING fts5(x)", F),
    case("alter", "ALTER TABLE singer ADD COLUMN pwned INTEGER", F),
    case("replace", "REPLACE INTO singer (singer_id, name) VALUES (1, 'x')", F),
    case("vacuum-into-file", "VACUUM INTO '{dir}/copy.db'", F),
    case("begin-transaction", "BEGIN IMMEDIATE", F),
    case("select-then-drop", "SELECT 1; DROP TABLE singer", F),
    case("comment-hides-second-statement", "SELECT 1 /* ; */; DROP TABLE singer --", F),
    case("comment-before-drop", "/* SELECT */ DROP TABLE singer", F),
    case("line-comment-before-delete", "-- SELECT\nDELETE FROM singer", F),
    case("string-hides-semicolon", "SELECT 'a;'; DELETE FROM singer", F),
    case("with-delete", "WITH x AS (SELECT 1) DELETE FROM singer", F),
    case("with-insert", "WITH x AS (SELECT 99) INSERT INTO concert (year) SELECT * FROM x", F),
    case("with-update", "WITH x AS (SELECT 1) UPDATE singer SET age = 1", F),
    case("runaway-recursive-cte", _RUNAWAY, T),
    case("huge-cross-join", "SELECT count(*) FROM big a, big b, big c, big d, big e", T),
    case("cross-join-rows", "SELECT * FROM big a, big b", M),
    case("randomblob-2e9", "SELECT randomblob(2e9)", R),
    case("randomblob-in-every-row", "SELECT randomblob(2000000000) FROM big", R),
    case("zeroblob-2e9", "SELECT zeroblob(2000000000)", R),
    case("zeroblob-rows", "SELECT zeroblob(9000000) FROM big", M),
    case("replace-amplifier", "SELECT replace(hex(zeroblob(5000000)), '0', 'aaaaaaaa')", R),
    case("group-concat-amplifier", "SELECT group_concat(zeroblob(9000000)) FROM big", R),
    case("printf-huge-width", _PRINTF_BOMB, T, in_process=False),
    case("printf-huge-padding", "SELECT printf('%2000000000d', 1)", OK),
    case("enormous-string-literal", "SELECT '" + "a" * (MAX_SQL_BYTES + 10) + "'", F),
    case("deeply-nested-parentheses", "SELECT " + "(" * 5000 + "1" + ")" * 5000, P),
    case("deeply-nested-subqueries", "SELECT * FROM (" * 300 + "SELECT 1" + ")" * 300, P),
    case("long-expression-chain", "SELECT 1" + " + 1" * 5000, P),
    case("too-many-union-terms", " UNION ".join(["SELECT 1"] * 600), R),
    case("too-many-columns", "SELECT " + ", ".join(["1"] * 3000), R),
    case("like-pattern-bomb", "SELECT * FROM singer WHERE name LIKE '" + "%" * 60000 + "'", R),
    case("surrogate-in-python-str", "SELECT '\udcff'", P),
    case("nul-byte-hides-statement", "SELECT 1\x00; DROP TABLE singer", P),
    case("fullwidth-keyword", "\uff33\uff25\uff2c\uff25\uff23\uff34 1", P),
    case("readfile", "SELECT readfile('/etc/passwd')", S, F),
    case("writefile", "SELECT writefile('{dir}/pwned.txt', 'data')", S, F),
    case("edit", "SELECT edit('x')", S, F),
    case("fts3-tokenizer-pointer", "SELECT fts3_tokenizer('simple')", F),
    case("json-each-table-function", "SELECT * FROM json_each('[1, 2]')", F),
    case("dbstat-virtual-table", "SELECT * FROM dbstat", F, S),
    case("sqlite-dbpage-virtual-table", "SELECT * FROM sqlite_dbpage", F, S),
    case("zero-width-space", "SELECT\u200b1", P),
    case("schema-read-is-allowed", "SELECT * FROM sqlite_master", OK),
    case("big-in-memory-sort", _BIG_SORT, T, R, in_process=False),
]


def _snapshot(folder: Path) -> dict[str, tuple[int, int, bytes]]:
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def sandbox():
    with SqlSandbox(timeout_s=TIMEOUT_S, max_rows=10_000, memory_mb=512) as box:
        yield box


@pytest.mark.parametrize("hostile", CASES, ids=[c.id for c in CASES])
def test_hostile_sql_is_contained_by_the_sandbox(sandbox: SqlSandbox, tmp_path: Path, hostile: Case) -> None:
    db = build_db(tmp_path / "victim.sqlite")
    before = _snapshot(tmp_path)
    sql = hostile.sql.replace("{dir}", str(tmp_path))

    started = time.monotonic()
    result = sandbox.execute(str(db), sql)
    elapsed = time.monotonic() - started

    assert result.error in hostile.expected, result.message
    assert elapsed < TIMEOUT_S + 1.0
    assert _snapshot(tmp_path) == before
    assert sandbox.execute(str(db), "SELECT count(*) FROM singer").rows == ((5,),)


IN_PROCESS = [c for c in CASES if c.in_process]


@pytest.mark.parametrize("hostile", IN_PROCESS, ids=[c.id for c in IN_PROCESS])
def test_hostile_sql_is_contained_in_process(tmp_path: Path, hostile: Case) -> None:
    db = build_db(tmp_path / "victim.sqlite")
    before = _snapshot(tmp_path)

    result = execute_sql(str(db), hostile.sql.replace("{dir}", str(tmp_path)), timeout_s=TIMEOUT_S)

    assert result.error in hostile.expected, result.message
    assert _snapshot(tmp_path) == before
    assert execute_sql(str(db), "SELECT count(*) FROM singer").rows == ((5,),)


def test_hostile_case_list_is_long_enough() -> None:
    assert len(CASES) >= 30
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize(
    "bomb",
    [
        "SELECT length(b) FROM (SELECT zeroblob(9000000) AS b FROM big ORDER BY random())",
        "SELECT zeroblob(7000000), zeroblob(7000000)",
        _BIG_SORT,
    ],
    ids=["sorted-blobs", "wide-row", "big-sort"],
)
def test_memory_bomb_fails_typed_and_the_sandbox_recovers(tmp_path: Path, bomb: str) -> None:
    db = build_db(tmp_path / "victim.sqlite")
    with SqlSandbox(timeout_s=2.0, memory_mb=64) as box:
        result = box.execute(str(db), bomb)
        assert result.error in (ErrorKind.CRASH, ErrorKind.RUNTIME, ErrorKind.TOO_MANY_ROWS)
        assert box.execute(str(db), "SELECT count(*) FROM big").rows == ((200,),)


def test_worker_killed_like_the_oom_killer_is_a_crash_and_restarts(tmp_path: Path) -> None:
    db = build_db(tmp_path / "victim.sqlite")
    with SqlSandbox(timeout_s=TIMEOUT_S, memory_mb=128) as box:
        box.start()
        first = box.pid
        os.kill(first, signal.SIGKILL)
        assert box.execute(str(db), "SELECT 1").error is ErrorKind.CRASH
        assert box.execute(str(db), "SELECT 2").rows == ((2,),)
        assert box.pid != first
