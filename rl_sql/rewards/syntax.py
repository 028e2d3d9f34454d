"""SyntaxReward: does the completion hold one well-formed SQLite query?

Scores (after ``extract_sql`` and a sqlglot parse in the SQLite dialect):

====================================================  ======
no SQL found, or the SQL does not parse                -0.5
parses, but is not exactly one query: several          0.0
statements, or a non-query (INSERT, DROP, a bare
expression such as ``hello world``)
exactly one SELECT / WITH / UNION-INTERSECT-EXCEPT     1.0
====================================================  ======

This is a parser check, not an execution: unknown tables or columns are the execution
reward's business. The middle tier rewards "looks like SQL" below "is a query", so a
policy is never paid for statements the sandbox will refuse.
"""

from __future__ import annotations

from typing import Any

from rl_sql.rewards.base import BaseReward, RewardResult
from rl_sql.rewards.parsing import cached_extract, cached_parse

INVALID_SCORE = -0.5
NOT_A_QUERY_SCORE = 0.0
QUERY_SCORE = 1.0


class SyntaxReward(BaseReward):
    name = "syntax"
    max_score = QUERY_SCORE

    def compute(self, prompt: str, completion: str, answer: str, **kwargs: Any) -> RewardResult:
        sql = cached_extract(completion)
        if sql is None:
            return RewardResult(INVALID_SCORE, {"sql": None, "verdict": "no_sql"})
        parsed = cached_parse(sql)
        if parsed.error is not None:
            return RewardResult(INVALID_SCORE, {"sql": sql, "verdict": "parse_error", "message": parsed.error})
        if parsed.single_query is None:
            kinds = [type(s).__name__ for s in parsed.statements]
            return RewardResult(NOT_A_QUERY_SCORE, {"sql": sql, "verdict": "not_a_single_query", "statements": kinds})
        return RewardResult(QUERY_SCORE, {"sql": sql, "verdict": "query"})
