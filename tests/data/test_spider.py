"""The Spider loaders over the embedded subset, the embedded dev copy and small Spider-layout
folders built here."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import sqlite3
from pathlib import Path

import pytest

from rl_sql.config import DataConfig
from rl_sql.data import (
    EMBEDDED_SPIDER_DEV_DIR,
    EMBEDDED_SPIDER_DIR,
    SpiderNotFound,
    load_embedded_spider,
    load_embedded_spider_dev,
    load_spider_dev,
    resolve_spider_dir,
)
from rl_sql.data.spider import check_spider_dir, dev_question_db_ids, load_spider_split
from rl_sql.sql.schema import parse_schema, tables_used

# The 20 databases of Spider 1.0 dev (the benchmark): none may be embedded.
SPIDER_DEV_DB_IDS = {
    "battle_death", "car_1", "concert_singer", "course_teach", "cre_Doc_Template_Mgt", "dog_kennels",
    "employee_hire_evaluation", "flight_2", "museum_visit", "network_1", "orchestra", "pets_1", "poker_player",
    "real_estate_properties", "singer", "student_transcripts_tracking", "tvshow", "voter_1", "world_1", "wta_1",
}


@pytest.fixture(scope="module")
def embedded():
    return load_embedded_spider()


def test_embedded_subset_size_and_databases(embedded):
    db_ids = {ex.db_id for ex in embedded}
    assert 1000 <= len(embedded) <= 1500
    assert 15 <= len(db_ids) <= 25
    assert not db_ids & SPIDER_DEV_DB_IDS
    assert all(len(ex.db_paths) == 1 and Path(ex.db_paths[0]).is_file() for ex in embedded)
    assert len({ex.id for ex in embedded}) == len(embedded)


def test_embedded_files_match_provenance_sha256():
    provenance = (EMBEDDED_SPIDER_DIR / "PROVENANCE.md").read_text()
    assert "CC BY-SA 4.0" in provenance
    rows = re.findall(r"^\| (\w+) \| \d+ \| \d+ \| ([0-9a-f]{64}) \|$", provenance, flags=re.M)
    on_disk = sorted(p.parent.name for p in (EMBEDDED_SPIDER_DIR / "database").glob("*/*.sqlite"))
    assert sorted(db for db, _ in rows) == on_disk
    for db, digest in rows:
        path = EMBEDDED_SPIDER_DIR / "database" / db / f"{db}.sqlite"
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest


def test_database_context_lists_every_table(embedded):
    ex = next(e for e in embedded if e.db_id == "college_1")
    con = sqlite3.connect(f"file:{ex.db_paths[0]}?mode=ro", uri=True)
    names = {r[0].lower() for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    con.close()
    assert {t.name.lower() for t in parse_schema(ex.context).tables} == names


def test_query_context_holds_only_the_gold_tables():
    examples = load_embedded_spider(context_scope="query")
    for ex in examples[::50]:
        in_context = {t.name.lower() for t in parse_schema(ex.context).tables}
        assert in_context == {t.lower() for t in tables_used(ex.answer)}, ex.id


def _mini_spider(tmp_path: Path, train_rows: list[dict], dev_rows: list[dict] | None = None) -> Path:
    root = tmp_path / "spider"
    (root / "database" / "gymnast").mkdir(parents=True)
    shutil.copyfile(EMBEDDED_SPIDER_DIR / "database/gymnast/gymnast.sqlite", root / "database/gymnast/gymnast.sqlite")
    (root / "tables.json").write_text("[]")
    (root / "train_spider.json").write_text(json.dumps(train_rows))
    if dev_rows is not None:
        (root / "dev.json").write_text(json.dumps(dev_rows))
    return root


def test_missing_database_is_counted_and_logged(tmp_path, caplog):
    rows = [
        {"question": "How many gymnasts?", "query": "SELECT count(*) FROM gymnast", "db_id": "gymnast"},
        {"question": "q1", "query": "SELECT 1", "db_id": "nowhere_db"},
        {"question": "q2", "query": "SELECT 2", "db_id": "nowhere_db"},
    ]
    root = _mini_spider(tmp_path, rows)
    with caplog.at_level(logging.WARNING, logger="rl_sql.data.spider"):
        examples = load_spider_split(root, "train")
    assert [ex.id for ex in examples] == ["spider-train-0"]
    assert "dropped 2 examples" in caplog.text and "nowhere_db x2" in caplog.text


def test_dev_ids_index_dev_json_even_after_a_drop(tmp_path, monkeypatch):
    monkeypatch.delenv("RL_SQL_SPIDER_DIR", raising=False)
    dev = [
        {"question": "q", "query": "SELECT 1", "db_id": "missing_db"},
        {"question": "How many gymnasts?", "query": "SELECT count(*) FROM gymnast", "db_id": "gymnast"},
    ]
    root = _mini_spider(tmp_path, [], dev)
    examples = load_spider_dev(root)
    assert [ex.id for ex in examples] == ["spider-dev-1"]
    assert examples[0].source == "spider"


def test_missing_folder_error_names_the_settings(tmp_path, monkeypatch):
    monkeypatch.delenv("RL_SQL_SPIDER_DIR", raising=False)
    with pytest.raises(SpiderNotFound, match=r"Spider not found at .*nope: set data.spider_dir or RL_SQL_SPIDER_DIR"):
        resolve_spider_dir(tmp_path / "nope")


def test_env_var_overrides_configured_dir(tmp_path, monkeypatch):
    root = _mini_spider(tmp_path, [])
    monkeypatch.setenv("RL_SQL_SPIDER_DIR", str(root))
    assert resolve_spider_dir("/does/not/exist") == root


# --------------------------------------------------------------------------- the embedded dev copy

REPO_ROOT = Path(__file__).resolve().parents[2]
WTA_1_INDEXES = range(429, 491)
"""wta_1's questions in Spider's dev.json: the one dev database we do not have."""


def _full_spider_dir() -> Path | None:
    """The full Spider folder (RL_SQL_SPIDER_DIR, else data.spider_dir = ../shared/data/spider) if present."""
    root = Path(os.environ.get("RL_SQL_SPIDER_DIR") or REPO_ROOT / DataConfig().spider_dir).expanduser()
    return root if (root / "dev.json").is_file() and (root / "database").is_dir() else None


@pytest.fixture(scope="module")
def embedded_dev():
    return load_embedded_spider_dev()


def _dev_db_paths() -> list[Path]:
    return sorted((EMBEDDED_SPIDER_DEV_DIR / "database").glob("*/*.sqlite"))


def test_embedded_dev_holds_every_question_of_the_19_databases(embedded_dev):
    assert len(embedded_dev) == 972
    assert {ex.db_id for ex in embedded_dev} == SPIDER_DEV_DB_IDS - {"wta_1"}
    assert sorted(p.parent.name for p in _dev_db_paths()) == sorted(SPIDER_DEV_DB_IDS - {"wta_1"})
    tables = json.loads((EMBEDDED_SPIDER_DEV_DIR / "tables.json").read_text())
    assert sorted(t["db_id"] for t in tables) == sorted(SPIDER_DEV_DB_IDS - {"wta_1"})
    indexes = [int(ex.id.removeprefix("spider-dev-")) for ex in embedded_dev]
    assert indexes == [i for i in range(1034) if i not in WTA_1_INDEXES]  # dev.json's order and ids
    assert all(ex.source == "spider" and len(ex.db_paths) == 1 for ex in embedded_dev)
    assert all(Path(ex.db_paths[0]).parent.parent.parent == EMBEDDED_SPIDER_DEV_DIR for ex in embedded_dev)
    assert all("CREATE TABLE" in ex.context for ex in embedded_dev)


def test_embedded_dev_lists_the_questions_it_leaves_out():
    db_ids = dev_question_db_ids(EMBEDDED_SPIDER_DEV_DIR)
    assert list(db_ids) == list(range(1034))
    assert {i for i, db in db_ids.items() if db == "wta_1"} == set(WTA_1_INDEXES)


def test_embedded_dev_databases_are_small_and_open_read_only():
    sizes = [p.stat().st_size for p in _dev_db_paths()]
    assert sum(sizes) < 1024 * 1024 and max(sizes) < 400 * 1024  # 946176 bytes; world_1 312 KiB
    for path in _dev_db_paths():
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            with pytest.raises(sqlite3.OperationalError, match="readonly"):
                con.execute("CREATE TABLE rl_sql_probe (x)")
        finally:
            con.close()


def test_every_embedded_dev_gold_query_runs(embedded_dev):
    failures = []
    for db_path in sorted({ex.db_paths[0] for ex in embedded_dev}):
        con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
        for ex in (e for e in embedded_dev if e.db_paths[0] == db_path):
            try:
                con.execute(ex.answer).fetchall()
            except sqlite3.Error as exc:
                failures.append((ex.id, ex.db_id, str(exc), ex.answer))
        con.close()
    assert failures == []


def test_embedded_dev_ids_and_fields_equal_the_full_folders(embedded_dev):
    full = _full_spider_dir()
    if full is None:
        pytest.skip("the full Spider folder (../shared/data/spider or RL_SQL_SPIDER_DIR) is absent, as in CI")
    from_full = load_spider_split(full, "dev")

    def fields(ex):
        return ex.id, ex.question, ex.answer, ex.db_id, ex.context, ex.source

    assert [fields(ex) for ex in embedded_dev] == [fields(ex) for ex in from_full]
    full_rows = json.loads((full / "dev.json").read_text())
    assert dev_question_db_ids(EMBEDDED_SPIDER_DEV_DIR) == {i: row["db_id"] for i, row in enumerate(full_rows)}


def test_embedded_dev_provenance_names_the_license_and_checksums():
    provenance = (EMBEDDED_SPIDER_DEV_DIR / "PROVENANCE.md").read_text()
    license_text = (EMBEDDED_SPIDER_DEV_DIR / "LICENSE.md").read_text()
    for text in (provenance, license_text):
        assert "CC BY-SA 4.0" in text and "https://creativecommons.org/licenses/by-sa/4.0/" in text and "Tao Yu" in text
    assert "make_embedded_subset --spider-dir <spider> --dev" in provenance
    rows = re.findall(r"^\| (\w+) \| (\d+) \| (\d+) \| ([0-9a-f]{64}) \|$", provenance, flags=re.M)
    assert sorted(db for db, *_ in rows) == sorted(p.parent.name for p in _dev_db_paths())
    assert sum(int(n) for _, n, _, _ in rows) == 972
    for db, _, size, digest in rows:
        path = EMBEDDED_SPIDER_DEV_DIR / "database" / db / f"{db}.sqlite"
        assert path.stat().st_size == int(size) and hashlib.sha256(path.read_bytes()).hexdigest() == digest
    for name in ("dev.json", "dev_left_out.json", "tables.json"):
        digest = hashlib.sha256((EMBEDDED_SPIDER_DEV_DIR / name).read_bytes()).hexdigest()
        assert re.search(rf"`{re.escape(name)}`.*?sha256 {digest}", provenance, flags=re.S), name


def test_embedded_dev_ignores_the_spider_dir_setting(embedded_dev, tmp_path, monkeypatch):
    monkeypatch.setenv("RL_SQL_SPIDER_DIR", str(tmp_path / "nowhere"))
    assert [ex.id for ex in load_embedded_spider_dev()] == [ex.id for ex in embedded_dev]


def test_dev_index_gives_the_ids_of_a_partial_copy(tmp_path):
    dev = [
        {"dev_index": 4, "question": "How many gymnasts?", "query": "SELECT count(*) FROM gymnast", "db_id": "gymnast"},
        {"dev_index": 9, "question": "Total points?", "query": "SELECT sum(Total_Points) FROM gymnast", "db_id": "gymnast"},
    ]
    root = _mini_spider(tmp_path, [], dev)
    (root / "dev_left_out.json").write_text(json.dumps([{"dev_index": 0, "db_id": "gone_db"}]))
    assert [ex.id for ex in load_spider_split(root, "dev")] == ["spider-dev-4", "spider-dev-9"]
    assert dev_question_db_ids(root) == {0: "gone_db", 4: "gymnast", 9: "gymnast"}


@pytest.mark.parametrize(
    ("indexes", "message"),
    [((4, None), "in every entry or in none"), ((9, 4), "must increase"), ((4, 4), "must increase"), ((-1, 2), "non-negative")],
)
def test_bad_dev_indexes_are_an_error(tmp_path, indexes, message):
    dev = [{"question": "q", "query": "SELECT 1", "db_id": "gymnast"} | ({"dev_index": i} if i is not None else {}) for i in indexes]
    root = _mini_spider(tmp_path, [], dev)
    with pytest.raises(ValueError, match=message):
        load_spider_split(root, "dev")


def test_a_left_out_question_may_not_repeat_a_held_one(tmp_path):
    root = _mini_spider(tmp_path, [], [{"dev_index": 2, "question": "q", "query": "SELECT 1", "db_id": "gymnast"}])
    (root / "dev_left_out.json").write_text(json.dumps([{"dev_index": 2, "db_id": "gymnast"}]))
    with pytest.raises(ValueError, match="dev_index 2 is also in"):
        dev_question_db_ids(root)


def test_check_spider_dir_ignores_the_env_var_and_says_what_to_fix(tmp_path, monkeypatch):
    root = _mini_spider(tmp_path, [])
    monkeypatch.setenv("RL_SQL_SPIDER_DIR", str(root))
    with pytest.raises(SpiderNotFound, match=r"Spider not found at .*nope: pass a better folder"):
        check_spider_dir(tmp_path / "nope", "pass a better folder")
    assert check_spider_dir(root, "unused") == root
