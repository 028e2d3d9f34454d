"""Text-to-SQL examples: loading (Spider, the embedded subset and dev copy, sql-create-context), splits, prompts."""

from rl_sql.data.create_context import CreateContextError, load_create_context
from rl_sql.data.example import SqlExample
from rl_sql.data.loading import deduplicate, load_examples, load_splits
from rl_sql.data.normalize import normalize_question, normalize_sql
from rl_sql.data.prompts import SYSTEM_PROMPT, chat_messages, compact_schema, format_prompt
from rl_sql.data.spider import (
    EMBEDDED_SPIDER_DEV_DIR,
    EMBEDDED_SPIDER_DIR,
    SpiderNotFound,
    load_embedded_spider,
    load_embedded_spider_dev,
    load_spider_dev,
    load_spider_split,
    resolve_spider_dir,
)
from rl_sql.data.split import (
    TrainingSplits,
    hold_out_paraphrases,
    paraphrase_pairs,
    split_by_database,
    split_examples,
    training_splits,
)

__all__ = [
    "EMBEDDED_SPIDER_DEV_DIR",
    "EMBEDDED_SPIDER_DIR",
    "SYSTEM_PROMPT",
    "CreateContextError",
    "SpiderNotFound",
    "SqlExample",
    "TrainingSplits",
    "chat_messages",
    "compact_schema",
    "deduplicate",
    "format_prompt",
    "hold_out_paraphrases",
    "load_create_context",
    "load_embedded_spider",
    "load_embedded_spider_dev",
    "load_examples",
    "load_splits",
    "load_spider_dev",
    "load_spider_split",
    "normalize_question",
    "normalize_sql",
    "paraphrase_pairs",
    "resolve_spider_dir",
    "split_by_database",
    "split_examples",
    "training_splits",
]
