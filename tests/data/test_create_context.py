"""sql-create-context files: JSON, JSONL, parquet, and the errors for bad ones."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rl_sql.data import CreateContextError, load_create_context

ROWS = [
    {"question": "How many heads are older than 56?", "context": "CREATE TABLE head (age INTEGER)",
     "answer": "SELECT COUNT(*) FROM head WHERE age > 56"},
    {"question": "Names of singers?", "context": "CREATE TABLE singer (name VARCHAR)", "answer": "SELECT name FROM singer"},
]


def _check(examples):
    assert [ex.id for ex in examples] == ["create-context-0", "create-context-1"]
    assert examples[1].answer == "SELECT name FROM singer"
    assert examples[0].context == "CREATE TABLE head (age INTEGER)"
    assert all(ex.db_paths == () and ex.db_id is None for ex in examples)


def test_json_list(tmp_path):
    path = tmp_path / "rows.json"
    path.write_text(json.dumps(ROWS))
    _check(load_create_context(path, hub_id="unused"))


def test_jsonl(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in ROWS) + "\n\n")
    _check(load_create_context(path, hub_id="unused"))


def test_parquet(tmp_path):
    path = tmp_path / "rows.parquet"
    pq.write_table(pa.Table.from_pylist([{**r, "extra": 1} for r in ROWS]), path)
    _check(load_create_context(path, hub_id="unused"))


def test_missing_column_names_column_and_file(tmp_path):
    path = tmp_path / "bad.parquet"
    pq.write_table(pa.Table.from_pylist([{"question": r["question"], "answer": r["answer"]} for r in ROWS]), path)
    with pytest.raises(CreateContextError, match=r"bad.parquet: missing column\(s\) \['context'\]"):
        load_create_context(path, hub_id="unused")


def test_missing_key_in_json_row_names_row(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps([ROWS[0], {"question": "q", "answer": "SELECT 1"}]))
    with pytest.raises(CreateContextError, match=r"row 1 lacks column\(s\) \['context'\]"):
        load_create_context(path, hub_id="unused")


def test_unknown_suffix_and_missing_file(tmp_path):
    with pytest.raises(CreateContextError, match="does not exist"):
        load_create_context(tmp_path / "none.json", hub_id="unused")
    path = tmp_path / "rows.csv"
    path.write_text("question,context,answer\n")
    with pytest.raises(CreateContextError, match="unknown file type"):
        load_create_context(path, hub_id="unused")


def test_offline_hub_error_tells_to_pass_a_local_path():
    # A fresh process: the hub's offline switch is read when huggingface_hub is imported.
    code = (
        "from rl_sql.data import load_create_context\n"
        "try:\n    load_create_context(None, 'b-mc2/sql-create-context')\n"
        "except Exception as e:\n    print(type(e).__name__, e)\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120).stdout
    assert out.startswith("CreateContextError") and "data.path" in out
