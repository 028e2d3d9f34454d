"""``load_examples(data_cfg)``: the configured source, deduplicated, optionally subsampled;
``load_splits(data_cfg)``: the same, split for SFT, GRPO and evaluation."""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence

from rl_sql.config import DataConfig
from rl_sql.data.create_context import load_create_context
from rl_sql.data.example import SqlExample
from rl_sql.data.normalize import normalize_context, normalize_question, normalize_sql
from rl_sql.data.spider import load_embedded_spider, load_spider_split, resolve_spider_dir
from rl_sql.data.split import TrainingSplits, training_splits

log = logging.getLogger(__name__)


def load_examples(data_cfg: DataConfig) -> list[SqlExample]:
    """Training examples of ``data_cfg.source``.

    - ``spider-embedded``: the subset shipped in the package (real databases);
    - ``spider``: the train split of the Spider folder ``data_cfg.spider_dir``
      (env ``RL_SQL_SPIDER_DIR`` overrides), real databases;
    - ``create-context``: ``data_cfg.path`` or the hub dataset ``data_cfg.hub_id`` (no databases).

    Duplicates (same normalized question, SQL and schema) are dropped and counted. With
    ``max_examples``, a seeded random sample of that size is kept, in the original order.
    """
    if data_cfg.source == "spider-embedded":
        examples = load_embedded_spider(data_cfg.context_scope)
    elif data_cfg.source == "spider":
        examples = load_spider_split(resolve_spider_dir(data_cfg.spider_dir), "train", context_scope=data_cfg.context_scope)
    elif data_cfg.source == "create-context":
        examples = load_create_context(data_cfg.path, data_cfg.hub_id)
    else:  # the config's Literal makes this unreachable unless a caller bypasses validation
        raise ValueError(f"unknown data.source {data_cfg.source!r}: use spider-embedded, spider or create-context")
    examples = deduplicate(examples)
    if data_cfg.max_examples is not None and data_cfg.max_examples < len(examples):
        keep = sorted(random.Random(data_cfg.seed).sample(range(len(examples)), data_cfg.max_examples))
        examples = [examples[i] for i in keep]
    if not examples:
        raise ValueError(f"data.source={data_cfg.source!r} produced no examples")
    return examples


def load_splits(data_cfg: DataConfig) -> TrainingSplits:
    """``training_splits`` of ``load_examples(data_cfg)`` with the config's fractions and seed."""
    return training_splits(
        load_examples(data_cfg), data_cfg.heldout_fraction, data_cfg.rl_fraction, data_cfg.seed,
        paraphrase_heldout=data_cfg.paraphrase_heldout,
    )


def deduplicate(examples: Sequence[SqlExample]) -> list[SqlExample]:
    """Keep the first of each (normalized question, normalized SQL, normalized schema); log the count dropped."""
    seen: set[tuple[str, str, str]] = set()
    kept: list[SqlExample] = []
    for ex in examples:
        key = (normalize_question(ex.question), normalize_sql(ex.answer), normalize_context(ex.context))
        if key in seen:
            continue
        seen.add(key)
        kept.append(ex)
    dropped = len(examples) - len(kept)
    if dropped:
        log.warning("dropped %d duplicate examples (same question, SQL and schema) of %d", dropped, len(examples))
    return kept
