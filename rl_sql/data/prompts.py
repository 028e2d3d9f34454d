"""Prompts for an example, in one of two styles (``data.prompt_style``).

- ``plain``: ``schema: t1(c1, c2) t2(c3)\\nquestion: ...\\nSQL: `` — the compact schema (table
  and column names only, rendered from the CREATE TABLE context). Short enough for a tiny
  model trained from scratch; the completion is the bare SQL.
- ``chat``: the tokenizer's chat template over a system prompt (answer with one SQLite
  query in a ```sql block) and a user turn holding the full CREATE TABLE context and the
  question, with the generation prompt appended. For pretrained instruct models.
"""

from __future__ import annotations

import logging
import re
from functools import lru_cache
from typing import Any, Literal

from rl_sql.data.example import SqlExample
from rl_sql.sql.schema import parse_schema

log = logging.getLogger(__name__)

PromptStyle = Literal["plain", "chat"]

SYSTEM_PROMPT = (
    "You are an expert SQL assistant. Given a SQLite database schema and a question, write one "
    "SQLite SELECT query that answers the question. Reply with the query in a ```sql code block "
    "and nothing else."
)


def user_message(example: SqlExample) -> str:
    """The user turn of the chat style: full schema, then the question."""
    return f"Schema:\n{example.context.strip()}\n\nQuestion: {example.question.strip()}"


def chat_messages(example: SqlExample) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": user_message(example)},
    ]


def format_prompt(example: SqlExample, style: PromptStyle = "plain", tokenizer: Any = None) -> str:
    """The prompt text the policy continues (see the module docstring for the two styles)."""
    if style == "plain":
        return f"schema: {compact_schema(example.context)}\nquestion: {example.question.strip()}\nSQL: "
    if style == "chat":
        if tokenizer is None or not getattr(tokenizer, "chat_template", None):
            raise ValueError(
                "prompt_style 'chat' needs a tokenizer with a chat template; "
                "pass the model's tokenizer, or set data.prompt_style=plain"
            )
        return tokenizer.apply_chat_template(chat_messages(example), tokenize=False, add_generation_prompt=True)
    raise ValueError(f"unknown prompt style {style!r}: use 'plain' or 'chat'")


_WS = re.compile(r"\s+")


@lru_cache(maxsize=8192)
def compact_schema(context: str) -> str:
    """``t1(c1, c2) t2(c3)``: table and column names of a CREATE TABLE context, in order.

    A context the schema parser rejects is rendered as its whitespace-collapsed text
    (logged), so one odd row does not stop a run over 80k examples.
    """
    try:
        schema = parse_schema(context)
    except ValueError as exc:
        log.warning("compact_schema: context does not parse (%s); using it verbatim", exc)
        return _WS.sub(" ", context.strip())
    return " ".join(f"{table.name}({', '.join(col.name for col in table.columns)})" for table in schema.tables)
