"""SemanticReward: how close is the predicted SQL text to the gold, after normalization?

Both queries are put in a canonical token form, then compared by multiset Jaccard
similarity J = |A ∩ B| / |A ∪ B| (token counts: min over max). Score = 0.8 * J, in
[0, 0.8]; -0.2 when the completion holds no SQL. The top (0.8) is below the syntax and
execution tops on purpose: looking like the gold is weaker evidence than returning its rows.

Canonical form (``canonical_tokens``): the text is split into tokens (identifiers and
keywords, numbers, whole string literals, single punctuation marks), lowercased, with double
quotes and backticks unified to single quotes; then, using the sqlglot parse (SQLite dialect)
shared with the syntax reward:
- table aliases are resolved (``T1.name`` -> ``singer.name``, ``singer AS T1`` -> ``singer``),
  so alias naming does not matter;
- ``AS name`` output aliases are dropped (``count(*) AS n`` -> ``count(*)``; not the type
  of ``CAST(x AS INT)``).
When the SQL does not parse, only the tokenization applies, so a nearly right but broken
query still earns partial credit. Tokens, not a regenerated text: regenerating the tree
costs as much as parsing it, and the reward runs on every completion.
"""

from __future__ import annotations

import re
from collections import Counter
from functools import lru_cache
from typing import Any

from sqlglot import exp

from rl_sql.rewards.base import BaseReward, RewardResult
from rl_sql.rewards.parsing import cached_extract, cached_parse

NO_SQL_SCORE = -0.2
MAX_SCORE = 0.8

_TOKEN = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|`[^`]*`|\d+(?:\.\d+)?|[a-z_][a-z0-9_$]*|[^\s\w]", re.IGNORECASE)


def _table_aliases(statements: tuple[exp.Expression, ...]) -> dict[str, str]:
    """Lowercased alias -> lowercased table name, for every aliased table of the statements."""
    aliases: dict[str, str] = {}
    for statement in statements:
        for table in statement.find_all(exp.Table):
            if table.alias and table.name:
                aliases[table.alias.lower()] = table.name.lower()
    return aliases


@lru_cache(maxsize=8192)
def canonical_tokens(sql: str) -> tuple[str, ...]:
    """The canonical token sequence of ``sql`` (see the module docstring)."""
    raw = [tok.lower().replace('"', "'").replace("`", "'") for tok in _TOKEN.findall(sql)]
    raw = [tok for tok in raw if tok != ";"]
    parsed = cached_parse(sql)
    if parsed.error is not None:
        return tuple(raw)
    aliases = _table_aliases(parsed.statements)
    out: list[str] = []
    in_cast: list[bool] = []  # one entry per open parenthesis: is it CAST's?
    i = 0
    while i < len(raw):
        tok = raw[i]
        nxt = raw[i + 1] if i + 1 < len(raw) else ""
        if tok == "(":
            in_cast.append(bool(out) and out[-1] == "cast")
        elif tok == ")" and in_cast:
            in_cast.pop()
        if tok == "as" and _is_word(nxt) and not (in_cast and in_cast[-1]):
            i += 2  # "AS alias" (table or output alias); CAST(x AS type) keeps its type
            continue
        if tok in aliases and nxt == ".":
            out.append(aliases[tok])  # T1.col -> table.col
        elif tok in aliases and out and out[-1] == aliases[tok] and nxt != ".":
            pass  # "singer s": an alias written without AS, right after its table
        else:
            out.append(tok)
        i += 1
    return tuple(out)


def _is_word(tok: str) -> bool:
    return bool(tok) and (tok[0].isalpha() or tok[0] in "_'")


def canonical_sql(sql: str) -> str:
    """The canonical tokens joined by spaces: equal strings = same query up to aliases, case, quotes, spacing."""
    return " ".join(canonical_tokens(sql))


def token_jaccard(a: tuple[str, ...], b: tuple[str, ...]) -> float:
    """Multiset Jaccard similarity of two token sequences (1.0 for two empty ones)."""
    ca, cb = Counter(a), Counter(b)
    union = sum((ca | cb).values())
    return 1.0 if union == 0 else sum((ca & cb).values()) / union


class SemanticReward(BaseReward):
    name = "semantic"
    max_score = MAX_SCORE

    def compute(self, prompt: str, completion: str, answer: str, **kwargs: Any) -> RewardResult:
        sql = cached_extract(completion)
        if sql is None:
            return RewardResult(NO_SQL_SCORE, {"sql": None, "jaccard": None})
        jaccard = token_jaccard(canonical_tokens(sql), canonical_tokens(answer))
        return RewardResult(MAX_SCORE * jaccard, {"sql": sql, "jaccard": round(jaccard, 4)})
