"""Spider 1.0 in its own folder layout: train questions, dev questions, real databases.

A Spider folder holds ``tables.json``, ``database/<db_id>/<db_id>.sqlite`` and the questions:
``train.json`` (the embedded subset), or ``train_spider.json`` + ``train_others.json``
(the official release), or ``train_spider.question_query_dbid_only.json`` (the staged
reduction); ``dev.json`` for the benchmark. Every example gets its real database in
``db_paths`` and a CREATE TABLE context read from that database's ``sqlite_master``
(every table, or only the tables the gold query reads, the way sql-create-context was built).
Examples whose database file is missing are dropped, counted and logged.

Dev ids are ``spider-dev-{index in the original dev.json}`` wherever the questions are read from.
The dev copy embedded in the package (``embedded/spider_dev``, written by
``make_embedded_subset --dev``) holds only the questions whose database we have, so each of its
entries records that index (``dev_index``), and ``dev_left_out.json`` lists the index and db_id
of each question it leaves out.
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from functools import lru_cache
from pathlib import Path
from typing import Literal

from rl_sql.data.example import SqlExample
from rl_sql.sql.schema import QueryParseError, schema_from_sqlite, tables_used

log = logging.getLogger(__name__)

SPIDER_DIR_ENV = "RL_SQL_SPIDER_DIR"
EMBEDDED_SPIDER_DIR = Path(__file__).resolve().parent / "embedded" / "spider"
EMBEDDED_SPIDER_DEV_DIR = Path(__file__).resolve().parent / "embedded" / "spider_dev"
DEV_INDEX_KEY = "dev_index"
"""In a partial dev copy, each entry's index in the original dev.json (its id)."""
DEV_LEFT_OUT_FILE = "dev_left_out.json"
"""In a partial dev copy: ``dev_index`` and ``db_id`` of each dev question it does not hold."""
TRAIN_FILE_CHOICES: tuple[tuple[str, ...], ...] = (
    ("train.json",),
    ("train_spider.json", "train_others.json"),
    ("train_spider.json",),
    ("train_spider.question_query_dbid_only.json",),
)
"""Question files tried in this order; the first set whose files all exist is read."""

ContextScope = Literal["database", "query"]


class SpiderNotFound(FileNotFoundError):
    """The configured folder is not a Spider folder."""


def check_spider_dir(spider_dir: str | Path, fix: str) -> Path:
    """``spider_dir`` when it holds tables.json and database/; else SpiderNotFound ending in ``fix``
    (what to set, and to what)."""
    spider_dir = Path(spider_dir).expanduser()
    if not (spider_dir / "tables.json").is_file() or not (spider_dir / "database").is_dir():
        raise SpiderNotFound(f"Spider not found at {spider_dir}: {fix}")
    return spider_dir


def resolve_spider_dir(configured: str | Path) -> Path:
    """``RL_SQL_SPIDER_DIR`` if set, else ``configured``; raises when it is not a Spider folder."""
    return check_spider_dir(
        os.environ.get(SPIDER_DIR_ENV) or configured,
        f"set data.spider_dir or {SPIDER_DIR_ENV} to a folder with dev.json, tables.json and database/",
    )


def database_path(spider_dir: Path, db_id: str) -> Path:
    return spider_dir / "database" / db_id / f"{db_id}.sqlite"


def _train_files(spider_dir: Path) -> list[Path]:
    for names in TRAIN_FILE_CHOICES:
        paths = [spider_dir / name for name in names]
        if all(p.is_file() for p in paths):
            return paths
    tried = ", ".join(" + ".join(names) for names in TRAIN_FILE_CHOICES)
    raise SpiderNotFound(f"no training questions in {spider_dir}: expected one of {tried}")


def _read_rows(path: Path) -> list[dict]:
    rows = json.loads(path.read_text())
    for i, row in enumerate(rows):
        missing = [k for k in ("question", "query", "db_id") if k not in row]
        if missing:
            raise ValueError(f"{path}: entry {i} lacks {missing} (Spider entries have question, query, db_id)")
    return rows


def _dev_indexes(path: Path, rows: list[dict]) -> list[int]:
    """Each entry's index in the original dev.json: its ``dev_index`` when the file is a partial
    copy (every entry has one, increasing), else its position."""
    carrying = sum(DEV_INDEX_KEY in row for row in rows)
    if carrying == 0:
        return list(range(len(rows)))
    indexes = [row.get(DEV_INDEX_KEY) for row in rows]
    if carrying < len(rows) or not all(isinstance(i, int) and i >= 0 for i in indexes):
        raise ValueError(f"{path}: {DEV_INDEX_KEY} must be a non-negative integer in every entry or in none")
    if any(a >= b for a, b in zip(indexes, indexes[1:])):
        raise ValueError(f"{path}: {DEV_INDEX_KEY} must increase from entry to entry (dev.json order)")
    return indexes


def dev_question_db_ids(spider_dir: str | Path) -> dict[int, str]:
    """Index in the original dev.json -> db_id, for every dev question: those of ``dev.json`` and,
    in a partial copy, those of ``dev_left_out.json``. Sorted by index."""
    spider_dir = Path(spider_dir)
    path = spider_dir / "dev.json"
    rows = _read_rows(path)
    db_ids = dict(zip(_dev_indexes(path, rows), (row["db_id"] for row in rows)))
    left_out_path = spider_dir / DEV_LEFT_OUT_FILE
    if left_out_path.is_file():
        for entry in json.loads(left_out_path.read_text()):
            if entry[DEV_INDEX_KEY] in db_ids:
                raise ValueError(f"{left_out_path}: {DEV_INDEX_KEY} {entry[DEV_INDEX_KEY]} is also in {path}")
            db_ids[entry[DEV_INDEX_KEY]] = entry["db_id"]
    return dict(sorted(db_ids.items()))


def load_spider_split(
    spider_dir: str | Path,
    split: Literal["train", "dev"],
    *,
    context_scope: ContextScope = "database",
    id_prefix: str | None = None,
    source: str = "spider",
) -> list[SqlExample]:
    """Examples of one split; ids are ``{id_prefix}-{index in the question file(s)}``.

    ``id_prefix`` defaults to ``spider-train`` / ``spider-dev``. Dev ids index the original
    ``dev.json`` (the evaluation relies on that), whether or not earlier entries were dropped,
    also in a partial copy (``dev_index``).
    """
    spider_dir = Path(spider_dir)
    if split == "dev":
        dev_file = spider_dir / "dev.json"
        if not dev_file.is_file():
            raise SpiderNotFound(f"{dev_file} is missing: this folder has no Spider dev split")
        rows = _read_rows(dev_file)
        indexes = _dev_indexes(dev_file, rows)
    else:
        rows = [row for path in _train_files(spider_dir) for row in _read_rows(path)]
        indexes = list(range(len(rows)))
    prefix = id_prefix or f"spider-{split}"

    examples: list[SqlExample] = []
    missing_db: Counter[str] = Counter()
    for index, row in zip(indexes, rows):
        db_id = row["db_id"]
        db_path = database_path(spider_dir, db_id)
        if not db_path.is_file():
            missing_db[db_id] += 1
            continue
        context = _context(str(db_path), _tables_for(row["query"], context_scope))
        examples.append(
            SqlExample(
                id=f"{prefix}-{index}",
                question=row["question"],
                context=context,
                answer=row["query"],
                db_id=db_id,
                db_paths=(str(db_path),),
                source=source,
            )
        )
    if missing_db:
        log.warning(
            "%s %s: dropped %d examples whose database file is missing (db ids: %s)",
            spider_dir,
            split,
            sum(missing_db.values()),
            ", ".join(f"{db} x{n}" for db, n in sorted(missing_db.items())),
        )
    return examples


def load_spider_dev(spider_dir: str | Path, context_scope: ContextScope = "database") -> list[SqlExample]:
    """Spider dev with ids ``spider-dev-{index in dev.json}``."""
    return load_spider_split(resolve_spider_dir(spider_dir), "dev", context_scope=context_scope)


def load_embedded_spider(context_scope: ContextScope = "database") -> list[SqlExample]:
    """The Spider subset shipped in the package (ids ``spider-embedded-{index in train.json}``)."""
    return load_spider_split(
        EMBEDDED_SPIDER_DIR,
        "train",
        context_scope=context_scope,
        id_prefix="spider-embedded",
        source="spider-embedded",
    )


def load_embedded_spider_dev(context_scope: ContextScope = "database") -> list[SqlExample]:
    """The Spider dev questions shipped in the package (every one whose database we have), with
    the ids and fields ``load_spider_dev`` gives them on the full folder: ``spider-dev-{index in
    dev.json}``, source ``spider``. ``RL_SQL_SPIDER_DIR`` plays no part."""
    return load_spider_split(EMBEDDED_SPIDER_DEV_DIR, "dev", context_scope=context_scope)


def _tables_for(sql: str, context_scope: ContextScope) -> frozenset[str] | None:
    """The tables to put in the context: None = all of them."""
    if context_scope == "database":
        return None
    try:
        return frozenset(name.lower() for name in tables_used(sql))
    except QueryParseError:
        log.warning("gold query does not parse with sqlglot; its context keeps every table: %s", sql)
        return None


@lru_cache(maxsize=4096)
def _context(db_path: str, tables: frozenset[str] | None) -> str:
    """CREATE TABLE text of the database (only ``tables``, matched case-insensitively, when given)."""
    schema = schema_from_sqlite(db_path)
    if tables is None:
        return schema.to_context()
    return schema.to_context([table.name for table in schema.tables if table.name.lower() in tables])
