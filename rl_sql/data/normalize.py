"""Text normal forms used to group and deduplicate examples.

These are deliberately shallow (no parsing): they must be fast over 80k examples and
total on any string. ``normalize_sql`` lowercases, unifies double quotes to single
quotes, drops a trailing ``;`` and collapses whitespace (also around parentheses and
commas), so ``SELECT  T1.a ,b FROM t AS T1`` and ``select t1.a, b from t as t1`` are one key.
"""

from __future__ import annotations

import re

_WS = re.compile(r"\s+")
_AROUND_PUNCT = re.compile(r"\s*([(),])\s*")


def normalize_sql(sql: str) -> str:
    """Lowercased, quote-unified, whitespace-collapsed SQL without a trailing ';'."""
    text = sql.strip().rstrip(";").strip().lower().replace('"', "'").replace("`", "'")
    text = _AROUND_PUNCT.sub(r"\1", text)
    text = text.replace(",", ", ")
    return _WS.sub(" ", text).strip()


def normalize_question(question: str) -> str:
    """Lowercased, whitespace-collapsed question."""
    return _WS.sub(" ", question.strip().lower())


def normalize_context(context: str) -> str:
    """Lowercased, whitespace-collapsed schema text."""
    return _WS.sub(" ", context.strip().lower())
