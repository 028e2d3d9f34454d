"""load_examples: dispatch on data.source, deduplication, subsampling."""

from __future__ import annotations

import json
import logging

from rl_sql.config import DataConfig
from rl_sql.data import load_examples


def test_spider_embedded_source():
    examples = load_examples(DataConfig(source="spider-embedded"))
    assert len(examples) > 1000
    assert all(ex.source == "spider-embedded" and ex.db_paths for ex in examples)


def test_duplicates_are_dropped_and_counted(tmp_path, caplog):
    rows = [
        {"question": "How many?", "context": "CREATE TABLE t (a INT)", "answer": "SELECT count(*) FROM t"},
        {"question": "how  many?", "context": "CREATE TABLE t (a int)", "answer": "select count(*) from t;"},
        {"question": "How many?", "context": "CREATE TABLE u (a INT)", "answer": "SELECT count(*) FROM u"},
    ]
    path = tmp_path / "rows.json"
    path.write_text(json.dumps(rows))
    with caplog.at_level(logging.WARNING, logger="rl_sql.data.loading"):
        examples = load_examples(DataConfig(source="create-context", path=str(path)))
    assert [ex.id for ex in examples] == ["create-context-0", "create-context-2"]
    assert "dropped 1 duplicate" in caplog.text


def test_max_examples_is_a_seeded_sample_in_order():
    cfg = DataConfig(source="spider-embedded", max_examples=50, seed=1)
    a, b = load_examples(cfg), load_examples(cfg)
    assert [e.id for e in a] == [e.id for e in b] and len(a) == 50
    indices = [int(e.id.rsplit("-", 1)[1]) for e in a]
    assert indices == sorted(indices) and len({e.db_id for e in a}) > 5
