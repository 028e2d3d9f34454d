"""The Spider loaders over the embedded subset and small Spider-layout folders built here."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
import sqlite3
from pathlib import Path

import pytest

from rl_sql.data import EMBEDDED_SPIDER_DIR, SpiderNotFound, load_embedded_spider, load_spider_dev, resolve_spider_dir
from rl_sql.data.spider import load_spider_split
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
