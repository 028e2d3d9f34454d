"""rl_sql.sql.extract: finding the SQL statement in a completion."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rl_sql.sql.extract import extract_sql

EMBEDDED_TRAIN = Path(__file__).resolve().parents[2] / "rl_sql" / "data" / "embedded" / "spider" / "train.json"

FOUND = [
    # (id, completion, expected SQL)
    ("bare", "SELECT name FROM singer", "SELECT name FROM singer"),
    ("bare-lower-case", "select name from singer", "select name from singer"),
    ("trailing-semicolon", "SELECT name FROM singer;", "SELECT name FROM singer"),
    ("several-trailing-semicolons", "SELECT name FROM singer;;  \n", "SELECT name FROM singer"),
    ("leading-whitespace", "\n\n   SELECT 1", "SELECT 1"),
    ("multi-line", "SELECT name\nFROM singer\nWHERE age > 20", "SELECT name\nFROM singer\nWHERE age > 20"),
    ("sql-fence", "```sql\nSELECT name FROM singer;\n```", "SELECT name FROM singer"),
    ("sqlite-fence", "```sqlite\nSELECT 1\n```", "SELECT 1"),
    ("upper-case-fence-tag", "```SQL\nSELECT 1\n```", "SELECT 1"),
    ("untagged-fence", "```\nSELECT a FROM t\n```", "SELECT a FROM t"),
    ("one-line-fence", "```sql SELECT 1```", "SELECT 1"),
    ("fence-with-prose-around", "Here it is:\n```sql\nSELECT a FROM t\n```\nThis returns a.", "SELECT a FROM t"),
    (
        "last-sql-fence-wins",
        "First try:\n```sql\nSELECT a FROM t\n```\nBetter:\n```sql\nSELECT b FROM t\n```",
        "SELECT b FROM t",
    ),
    (
        "sql-fence-beats-output-fence",
        "```sql\nSELECT a FROM t\n```\nOutput:\n```\n| a |\n| 1 |\n```",
        "SELECT a FROM t",
    ),
    ("python-fence-is-skipped", "```python\nq = 1\n```\n```sql\nSELECT 2\n```", "SELECT 2"),
    ("truncated-open-fence", "```sql\nSELECT a\nFROM t", "SELECT a\nFROM t"),
    ("fence-with-comment", "```sql\n-- names of singers\nSELECT name FROM singer\n```", "SELECT name FROM singer"),
    ("sql-tag", "<sql>SELECT a FROM t</sql>", "SELECT a FROM t"),
    ("upper-case-tag", "<SQL>\nselect a from t;\n</SQL> done", "select a from t"),
    ("answer-tag", "<answer>SELECT count(*) FROM t</answer>", "SELECT count(*) FROM t"),
    ("open-tag", "<sql>SELECT a FROM t", "SELECT a FROM t"),
    ("sql-label", "SQL: select name from singer", "select name from singer"),
    ("answer-label", "Answer: SELECT count(*) FROM t;", "SELECT count(*) FROM t"),
    ("bold-label-inline-code", "**SQL:** `SELECT a FROM t`", "SELECT a FROM t"),
    ("label-then-note", "SQL query: SELECT a FROM t\nNote: this uses t.", "SELECT a FROM t"),
    (
        "prose-select-before-sql",
        "To answer this, we select the names from the table.\nSELECT name FROM singer",
        "SELECT name FROM singer",
    ),
    ("inline-code", "The answer is `SELECT name FROM singer`.", "SELECT name FROM singer"),
    ("trailing-prose-after-blank-line", "SELECT a FROM t\n\nThis query selects a from t.", "SELECT a FROM t"),
    ("trailing-prose-next-line", "SELECT a FROM t\nThis query selects a from t.", "SELECT a FROM t"),
    ("trailing-list", "SELECT a FROM t\n1. first point", "SELECT a FROM t"),
    ("trailing-explanation", "SELECT a FROM t;\n\nExplanation:\n- We read t.", "SELECT a FROM t"),
    ("blank-line-inside-sql", "SELECT a\nFROM t\n\nWHERE b > 20", "SELECT a\nFROM t\n\nWHERE b > 20"),
    ("star-line-is-sql", "SELECT\n* FROM t", "SELECT\n* FROM t"),
    ("second-statement-dropped", "SELECT a FROM t WHERE b = 'x;y'; DROP TABLE t", "SELECT a FROM t WHERE b = 'x;y'"),
    ("sentence-period", "SELECT count(*) FROM t.", "SELECT count(*) FROM t"),
    ("decimal-kept", "SELECT a FROM t WHERE b > 1.", "SELECT a FROM t WHERE b > 1."),
    ("cte", "WITH c AS (SELECT a FROM t) SELECT * FROM c;", "WITH c AS (SELECT a FROM t) SELECT * FROM c"),
    (
        "recursive-cte",
        "with recursive r(n) as (select 1) select n from r;",
        "with recursive r(n) as (select 1) select n from r",
    ),
    ("chatml-leftovers", "<|im_start|>assistant\nSELECT 1<|im_end|>\n<|im_start|>user\nhi", "SELECT 1"),
    ("llama3-end-of-turn", "SELECT 1<|eot_id|>garbage", "SELECT 1"),
    ("leading-end-token", "</s>SELECT 1", "SELECT 1"),
    ("llama2-inst", "[INST] question [/INST] SELECT a FROM t </s>", "SELECT a FROM t"),
    ("think-block", "<think>maybe SELECT x FROM y</think>\nSELECT a FROM t", "SELECT a FROM t"),
    ("capitalized-columns", "select T1.Name from t as T1\nwhere x = 1", "select T1.Name from t as T1\nwhere x = 1"),
    (
        "chatty",
        "Sure! Here's the SQL query:\n\nSELECT T1.name, T2.age\nFROM a AS T1\nJOIN b AS T2 ON T1.id = T2.id\n"
        "ORDER BY T2.age DESC\nLIMIT 1;\n\nExplanation:\n- We join ...",
        "SELECT T1.name, T2.age\nFROM a AS T1\nJOIN b AS T2 ON T1.id = T2.id\nORDER BY T2.age DESC\nLIMIT 1",
    ),
    ("keyword-only", "SELECT", "SELECT"),
]

NOT_FOUND = [
    ("empty", ""),
    ("whitespace", "   \n "),
    ("prose", "No SQL here."),
    ("prose-with-select-verb", "I will select the names from the table."),
    ("prose-with-with", "with the help of the table, select all."),
    ("python-only", "```python\nprint(1)\n```"),
    ("only-end-tokens", "<|im_end|>"),
]


@pytest.mark.parametrize(("completion", "expected"), [c[1:] for c in FOUND], ids=[c[0] for c in FOUND])
def test_extracts_the_statement(completion: str, expected: str) -> None:
    assert extract_sql(completion) == expected


@pytest.mark.parametrize("completion", [c[1] for c in NOT_FOUND], ids=[c[0] for c in NOT_FOUND])
def test_returns_none_without_sql(completion: str) -> None:
    assert extract_sql(completion) is None


@pytest.mark.parametrize(("completion", "expected"), [c[1:] for c in FOUND], ids=[c[0] for c in FOUND])
def test_extraction_is_idempotent(completion: str, expected: str) -> None:
    assert extract_sql(expected) == expected


@pytest.mark.parametrize(
    "wrap",
    ["{q}", "```sql\n{q}\n```", "Here is the query:\n{q}\n\nThis query answers the question.", "SQL: {q};"],
    ids=["bare", "fence", "prose-around", "label"],
)
def test_every_embedded_spider_gold_query_is_extracted_unchanged(wrap: str) -> None:
    if not EMBEDDED_TRAIN.is_file():
        pytest.skip(f"embedded Spider subset not built yet ({EMBEDDED_TRAIN})")
    queries = [example["query"].strip().rstrip(";").strip() for example in json.loads(EMBEDDED_TRAIN.read_text())]
    assert queries
    wrong = [q for q in queries if extract_sql(wrap.format(q=q)) != q]
    assert wrong == []
