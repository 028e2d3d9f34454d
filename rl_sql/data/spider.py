"""Spider 1.0 in its own folder layout: train questions, dev questions, real databases.

A Spider folder holds ``tables.json``, ``database/<db_id>/<db_id>.sqlite`` and the questions:
``train.json`` (the embedded subset), or ``train_spider.json`` + ``train_others.json``
(the official release), or ``train_spider.question_query_dbid_only.json`` (the staged
reduction); ``dev.json`` for the benchmark. Every example gets its real database in
``db_paths`` and a CREATE TABLE context read from that database's ``sqlite_master``
(every table, or only the tables the gold query reads, the way sql-create-context was built).
Examples whose database file is missing are dropped, counted and logged.
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


def resolve_spider_dir(configured: str | Path) -> Path:
    """``RL_SQL_SPIDER_DIR`` if set, else ``configured``; raises when it is not a Spider folder."""
    spider_dir = Path(os.environ.get(SPIDER_DIR_ENV) or configured).expanduser()
    if not (spider_dir / "tables.json").is_file() or not (spider_dir / "database").is_dir():
        raise SpiderNotFound(
            f"Spider not found at {spider_dir}: set data.spider_dir or {SPIDER_DIR_ENV} to a folder "
            "with dev.json, tables.json and database/"
        )
    return spider_dir


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


def load_spider_split(
    spider_dir: str | Path,
    split: Literal["train", "dev"],
    *,
    context_scope: ContextScope = "database",
    id_prefix: str | None = None,
    source: str = "spider",
) -> list[SqlExample]:
    """Examples of one split; ids are ``{id_prefix}-{index in the question file(s)}``.

    ``id_prefix`` defaults to ``spider-train`` / ``spider-dev``. Dev ids index ``dev.json``
    (the evaluation relies on that), whether or not earlier entries were dropped.
    """
    spider_dir = Path(spider_dir)
    if split == "dev":
        if not (spider_dir / "dev.json").is_file():
            raise SpiderNotFound(f"{spider_dir / 'dev.json'} is missing: this folder has no Spider dev split")
        rows = _read_rows(spider_dir / "dev.json")
    else:
        rows = [row for path in _train_files(spider_dir) for row in _read_rows(path)]
    prefix = id_prefix or f"spider-{split}"

    examples: list[SqlExample] = []
    missing_db: Counter[str] = Counter()
    for index, row in enumerate(rows):
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
