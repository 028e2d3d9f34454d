"""Prompt styles: plain (compact schema) and chat (the tokenizer's template)."""

from __future__ import annotations

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from rl_sql.data import SYSTEM_PROMPT, SqlExample, compact_schema, format_prompt

EXAMPLE = SqlExample(
    id="x",
    question="How many singers are there?",
    context="CREATE TABLE singer (Singer_ID INT, Name TEXT, PRIMARY KEY (Singer_ID)); CREATE TABLE concert (id INT, singer_id INT)",
    answer="SELECT count(*) FROM singer",
)
TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def _tokenizer(chat_template: str | None) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel()
    tok.train_from_iterator([EXAMPLE.context, EXAMPLE.question, SYSTEM_PROMPT], trainers.BpeTrainer(vocab_size=300, special_tokens=["<unk>"]))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>")
    fast.chat_template = chat_template
    return fast


def test_compact_schema_lists_tables_and_columns():
    assert compact_schema(EXAMPLE.context) == "singer(Singer_ID, Name) concert(id, singer_id)"


def test_plain_prompt():
    assert format_prompt(EXAMPLE, "plain") == (
        "schema: singer(Singer_ID, Name) concert(id, singer_id)\nquestion: How many singers are there?\nSQL: "
    )


def test_chat_prompt_uses_the_template_with_system_prompt():
    text = format_prompt(EXAMPLE, "chat", _tokenizer(TEMPLATE))
    assert text.startswith(f"<|system|>{SYSTEM_PROMPT}\n<|user|>Schema:\n{EXAMPLE.context}")
    assert "Question: How many singers are there?" in text and text.endswith("<|assistant|>")
    assert "```sql" in SYSTEM_PROMPT


def test_chat_without_template_is_an_error_naming_the_fix():
    with pytest.raises(ValueError, match="prompt_style=plain"):
        format_prompt(EXAMPLE, "chat", _tokenizer(None))
    with pytest.raises(ValueError, match="prompt_style=plain"):
        format_prompt(EXAMPLE, "chat", None)
