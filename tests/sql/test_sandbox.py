"""rl_sql.sql.sandbox: in-process execution (execute_sql) and the worker process (SqlSandbox)."""

from __future__ import annotations

import os
import pickle
import signal
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from sql_fixture_db import BIG_ROWS, SINGERS, build_db

from rl_sql.sql.sandbox import KILL_GRACE_S, SqlSandbox, execute_sql, find_statement_end
from rl_sql.sql.types import ErrorKind


@pytest.fixture
def test_db(tmp_path: Path) -> Path:
    return build_db(tmp_path / "concerts.sqlite")


# ----------------------------------------------------------------------------- execute_sql
def test_select_returns_rows_and_column_names(test_db: Path) -> None:
    result = execute_sql(str(test_db), "SELECT name, age FROM singer WHERE age > 42 ORDER BY age")
    assert result.ok
    assert result.columns == ("name", "age")
    assert result.rows == (("John Nizinik", 43), ("Joe Sharp", 52))


def test_with_statement_runs(test_db: Path) -> None:
    sql = "WITH fr AS (SELECT * FROM singer WHERE country = 'France') SELECT count(*) FROM fr"
    assert execute_sql(str(test_db), sql).rows == ((3,),)


def test_recursive_cte_is_allowed(test_db: Path) -> None:
    sql = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) SELECT sum(n) FROM r"
    assert execute_sql(str(test_db), sql).rows == ((15,),)


def test_comments_and_trailing_semicolons_are_accepted(test_db: Path) -> None:
    sql = "-- singers\n/* block */ SELECT count(*) FROM singer ;; -- done\n"
    assert execute_sql(str(test_db), sql).rows == ((5,),)


def test_semicolon_inside_string_is_not_a_statement_break(test_db: Path) -> None:
    result = execute_sql(str(test_db), "SELECT 'a;b' AS \"x;y\"")
    assert result.rows == (("a;b",),) and result.columns == ("x;y",)


def test_blob_and_null_values_are_returned(test_db: Path) -> None:
    result = execute_sql(str(test_db), "SELECT photo, net_worth FROM singer ORDER BY singer_id")
    assert result.rows == tuple((s[5], s[4]) for s in SINGERS)


def test_row_cap_allows_exactly_max_rows(test_db: Path) -> None:
    result = execute_sql(str(test_db), "SELECT x FROM big", max_rows=BIG_ROWS)
    assert result.ok and len(result.rows) == BIG_ROWS


def test_row_cap_rejects_one_more_row(test_db: Path) -> None:
    result = execute_sql(str(test_db), "SELECT x FROM big", max_rows=BIG_ROWS - 1)
    assert result.error is ErrorKind.TOO_MANY_ROWS and result.rows == ()


def test_result_byte_cap_rejects_large_values(test_db: Path) -> None:
    result = execute_sql(str(test_db), "SELECT zeroblob(1000) FROM big", max_result_bytes=100_000)
    assert result.error is ErrorKind.TOO_MANY_ROWS
    assert "bytes" in result.message


def test_runaway_query_stops_at_deadline(test_db: Path) -> None:
    sql = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r WHERE n < 0"
    started = time.monotonic()
    result = execute_sql(str(test_db), sql, timeout_s=0.3)
    assert result.error is ErrorKind.TIMEOUT
    assert time.monotonic() - started < 0.3 + 1.0


def test_deadline_is_reset_for_the_next_query_on_a_cached_connection(test_db: Path) -> None:
    runaway = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r WHERE n < 0"
    assert execute_sql(str(test_db), runaway, timeout_s=0.2).error is ErrorKind.TIMEOUT
    assert execute_sql(str(test_db), "SELECT count(*) FROM big, big", timeout_s=5.0).rows == ((BIG_ROWS**2,),)


@pytest.mark.parametrize(
    "sql",
    ["SELECT nope FROM singer", "SELECT * FROM nowhere", "SELECT singer_id FROM singer, concert", "SELECT frob(1)"],
    ids=["column", "table", "ambiguous", "function"],
)
def test_unknown_names_are_schema_errors(test_db: Path, sql: str) -> None:
    assert execute_sql(str(test_db), sql).error is ErrorKind.SCHEMA


@pytest.mark.parametrize(
    "sql",
    ["SELECT FROM WHERE", "SELECT 1 +", "SELECT 'open", "   ", "-- only a comment", "(SELECT 1)", "SELEC 1"],
    ids=["syntax", "incomplete", "unterminated-string", "blank", "comment-only", "parenthesized", "misspelled"],
)
def test_malformed_sql_is_a_parse_error(test_db: Path, sql: str) -> None:
    assert execute_sql(str(test_db), sql).error is ErrorKind.PARSE


@pytest.mark.parametrize(
    "sql",
    ["DROP TABLE singer", "VALUES (1)", "EXPLAIN SELECT 1", "SELECT 1; SELECT 2", "PRAGMA table_info(singer)"],
    ids=["drop", "values", "explain", "two-selects", "pragma"],
)
def test_anything_but_one_select_is_forbidden(test_db: Path, sql: str) -> None:
    assert execute_sql(str(test_db), sql).error is ErrorKind.FORBIDDEN


def test_misused_aggregate_is_a_runtime_error(test_db: Path) -> None:
    assert execute_sql(str(test_db), "SELECT max(count(*)) FROM singer").error is ErrorKind.RUNTIME


def test_integer_overflow_is_a_runtime_error(test_db: Path) -> None:
    assert execute_sql(str(test_db), "SELECT abs(-9223372036854775808)").error is ErrorKind.RUNTIME


def test_schema_table_is_readable(test_db: Path) -> None:
    names = {row[0] for row in execute_sql(str(test_db), "SELECT name FROM sqlite_master").rows}
    assert names == {"singer", "concert", "big"}


def test_invalid_utf8_text_in_the_database_is_decoded_leniently(tmp_path: Path) -> None:
    path = tmp_path / "latin1.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (name TEXT)")
    conn.execute("INSERT INTO t VALUES (CAST(x'4361666ae9' AS TEXT))")  # 'Caf' + 'j' + latin-1 e-acute
    conn.commit()
    conn.close()
    result = execute_sql(str(path), "SELECT name FROM t")
    assert result.rows == (("Cafj\ufffd",),)
    assert execute_sql(str(path), "SELECT 'ok'").rows == (("ok",),)  # strict decoding is back


def test_rewritten_database_is_reopened(tmp_path: Path) -> None:
    path = build_db(tmp_path / "db.sqlite")
    assert execute_sql(str(path), "SELECT count(*) FROM singer").rows == ((5,),)
    path.unlink()
    build_db(path, singers=SINGERS[:2])
    assert execute_sql(str(path), "SELECT count(*) FROM singer").rows == ((2,),)


def test_paths_with_uri_special_characters_work(tmp_path: Path) -> None:
    folder = tmp_path / "odd #dir?%20"
    folder.mkdir()
    path = build_db(folder / "db 1#.sqlite")
    assert execute_sql(str(path), "SELECT count(*) FROM singer").rows == ((5,),)


def test_connections_work_from_another_thread(test_db: Path) -> None:
    execute_sql(str(test_db), "SELECT 1")  # cached on this thread
    results = []
    worker = threading.Thread(target=lambda: results.append(execute_sql(str(test_db), "SELECT count(*) FROM big")))
    worker.start()
    worker.join()
    assert results[0].rows == ((BIG_ROWS,),)


def test_missing_database_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        execute_sql(str(tmp_path / "absent.sqlite"), "SELECT 1")
    assert not (tmp_path / "absent.sqlite").exists()


def test_non_string_sql_raises(test_db: Path) -> None:
    with pytest.raises(TypeError, match="must be a str"):
        execute_sql(str(test_db), b"SELECT 1")  # type: ignore[arg-type]


def test_elapsed_time_is_measured(test_db: Path) -> None:
    result = execute_sql(str(test_db), "SELECT count(*) FROM big, big")
    assert result.elapsed_s > 0


@pytest.mark.parametrize(
    ("sql", "end"),
    [
        ("SELECT 1", 8),
        ("SELECT 1; DROP", 8),
        ("SELECT ';' ; x", 11),
        ('SELECT ";"; x', 10),
        ("SELECT `;`; x", 10),
        ("SELECT [;]; x", 10),
        ("SELECT 1 -- ;\n; x", 14),
        ("SELECT 1 /* ; */; x", 16),
        ("SELECT 'it''s;'; x", 15),
        ("SELECT 'open ; x", 16),
    ],
)
def test_statement_end_skips_strings_comments_and_identifiers(sql: str, end: int) -> None:
    assert find_statement_end(sql) == end


# ----------------------------------------------------------------------------- SqlSandbox
@pytest.fixture
def sandbox():
    with SqlSandbox(timeout_s=0.3, max_rows=1000, memory_mb=256) as box:
        yield box


def test_sandbox_gives_the_same_result_as_in_process(sandbox: SqlSandbox, test_db: Path) -> None:
    sql = "SELECT s.name, count(*) FROM singer s JOIN concert c USING (singer_id) GROUP BY s.name ORDER BY 1"
    in_worker, in_process = sandbox.execute(str(test_db), sql), execute_sql(str(test_db), sql)
    assert in_worker.ok
    assert (in_worker.rows, in_worker.columns) == (in_process.rows, in_process.columns)


def test_execute_many_returns_one_result_per_database(sandbox: SqlSandbox, tmp_path: Path) -> None:
    paths = [str(build_db(tmp_path / f"db{k}.sqlite", singers=SINGERS[:k])) for k in (1, 3, 5)]
    results = sandbox.execute_many(paths, "SELECT count(*) FROM singer")
    assert [r.rows for r in results] == [((1,),), ((3,),), ((5,),)]


def test_execute_many_of_no_database_is_empty(sandbox: SqlSandbox) -> None:
    assert sandbox.execute_many([], "SELECT 1") == []


def test_sandbox_reports_typed_errors(sandbox: SqlSandbox, test_db: Path) -> None:
    assert sandbox.execute(str(test_db), "SELECT nope FROM singer").error is ErrorKind.SCHEMA
    assert sandbox.execute(str(test_db), "SELECT a.x FROM big a, big b").error is ErrorKind.TOO_MANY_ROWS


def test_sandbox_raises_for_a_missing_database_and_keeps_working(sandbox: SqlSandbox, test_db: Path) -> None:
    with pytest.raises(FileNotFoundError, match="absent"):
        sandbox.execute_many([str(test_db), str(test_db.parent / "absent.sqlite")], "SELECT 1")
    assert sandbox.execute(str(test_db), "SELECT 2").rows == ((2,),)


def test_unresponsive_worker_is_killed_at_the_deadline(sandbox: SqlSandbox, test_db: Path) -> None:
    sandbox.start()
    stuck_pid = sandbox.pid
    os.kill(stuck_pid, signal.SIGSTOP)
    started = time.monotonic()
    result = sandbox.execute(str(test_db), "SELECT 1")
    assert result.error is ErrorKind.TIMEOUT
    assert time.monotonic() - started < sandbox.timeout_s + 1.0
    with pytest.raises(ProcessLookupError):
        os.kill(stuck_pid, 0)  # killed and reaped


def test_worker_is_restarted_after_a_kill(sandbox: SqlSandbox, test_db: Path) -> None:
    sandbox.start()
    os.kill(sandbox.pid, signal.SIGSTOP)
    assert sandbox.execute(str(test_db), "SELECT 1").error is ErrorKind.TIMEOUT
    assert sandbox.execute(str(test_db), "SELECT 3").rows == ((3,),)
    assert sandbox.workers_started == 2


def test_dead_worker_is_a_crash(sandbox: SqlSandbox, test_db: Path) -> None:
    sandbox.start()
    os.kill(sandbox.pid, signal.SIGKILL)
    result = sandbox.execute(str(test_db), "SELECT 1")
    assert result.error is ErrorKind.CRASH
    assert "SIGKILL" in result.message


def test_databases_after_a_kill_are_marked_not_run(sandbox: SqlSandbox, test_db: Path) -> None:
    sandbox.start()
    os.kill(sandbox.pid, signal.SIGSTOP)
    results = sandbox.execute_many([str(test_db)] * 3, "SELECT 1")
    assert [r.error for r in results] == [ErrorKind.TIMEOUT] * 3
    assert [r.message.startswith("not run") for r in results] == [False, True, True]


def test_worker_has_memory_and_file_size_limits(sandbox: SqlSandbox, test_db: Path) -> None:
    sandbox.execute(str(test_db), "SELECT 1")  # the worker sets its limits before it answers
    limits = Path(f"/proc/{sandbox.pid}/limits").read_text().splitlines()
    address_space = next(line for line in limits if line.startswith("Max address space")).split()
    file_size = next(line for line in limits if line.startswith("Max file size")).split()
    assert address_space[3] == str(256 * 2**20)
    assert file_size[3] == "0"


def test_close_stops_the_worker(test_db: Path) -> None:
    box = SqlSandbox(timeout_s=0.5)
    box.execute(str(test_db), "SELECT 1")
    pid = box.pid
    box.close()
    assert box.pid is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_pickled_sandbox_keeps_settings_and_starts_its_own_worker(sandbox: SqlSandbox, test_db: Path) -> None:
    sandbox.start()
    copy = pickle.loads(pickle.dumps(sandbox))
    try:
        assert (copy.timeout_s, copy.max_rows, copy.memory_mb) == (0.3, 1000, 256)
        assert copy.pid is None
        assert copy.execute(str(test_db), "SELECT 4").rows == ((4,),)
        assert copy.pid != sandbox.pid
    finally:
        copy.close()


def test_forked_copy_starts_its_own_worker_and_leaves_the_parents_alone(sandbox: SqlSandbox, test_db: Path) -> None:
    sandbox.execute(str(test_db), "SELECT 1")
    parent_worker = sandbox.pid
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the forked process
        code = 1
        try:
            answer = sandbox.execute(str(test_db), "SELECT 5")
            code = 0 if answer.rows == ((5,),) and sandbox.pid != parent_worker else 2
            sandbox.close()
        finally:
            os._exit(code)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert sandbox.pid == parent_worker
    assert sandbox.execute(str(test_db), "SELECT 6").rows == ((6,),)


def test_concurrent_calls_from_threads_get_their_own_answers(sandbox: SqlSandbox, test_db: Path) -> None:
    answers: dict[int, object] = {}

    def ask(k: int) -> None:
        answers[k] = sandbox.execute(str(test_db), f"SELECT {k}").rows

    threads = [threading.Thread(target=ask, args=(k,)) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == {k: ((k,),) for k in range(8)}


def test_invalid_settings_are_rejected() -> None:
    with pytest.raises(ValueError, match="timeout_s"):
        SqlSandbox(timeout_s=0)
    with pytest.raises(ValueError, match="memory_mb"):
        SqlSandbox(memory_mb=10)


def test_kill_grace_keeps_calls_within_one_second_of_the_deadline() -> None:
    assert 0 < KILL_GRACE_S < 1.0


@pytest.mark.slow
def test_sandbox_runs_inside_a_ray_actor(test_db: Path) -> None:
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:

        @ray.remote
        class Scorer:
            def __init__(self) -> None:
                self.box = SqlSandbox(timeout_s=0.5, memory_mb=256)

            def count(self, path: str) -> tuple:
                return self.box.execute_many([path, path], "SELECT count(*) FROM big")[1].rows

        scorer = Scorer.remote()
        assert ray.get(scorer.count.remote(str(test_db)), timeout=60) == ((BIG_ROWS,),)
    finally:
        ray.shutdown()
