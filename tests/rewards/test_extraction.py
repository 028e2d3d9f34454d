"""Completions in the shapes models write them (fences, tags, prose) score like the bare SQL."""

from __future__ import annotations

import pytest

from rl_sql.rewards import create_sql_reward

from rl_sql.data import EMBEDDED_SPIDER_DIR

GYMNAST_DB = str(EMBEDDED_SPIDER_DIR / "database" / "gymnast" / "gymnast.sqlite")

GOLD = "SELECT Name FROM people WHERE Age > 23"


@pytest.mark.parametrize(
    "completion",
    [
        f"```sql\n{GOLD};\n```",
        f"Here is the query:\n```\n{GOLD}\n```\nIt lists the names.",
        f"<sql>{GOLD}</sql>",
        f"The people older than 23 are found with\nSQL: {GOLD};",
        f"<think>need people</think>\n```sqlite\n{GOLD}\n```",
    ],
)
def test_wrapped_gold_scores_like_bare_gold(reward_cfg, completion):
    reward = create_sql_reward(reward_cfg, "combined")
    bare = reward.compute("p", GOLD, GOLD, db_paths=(GYMNAST_DB,))
    wrapped = reward.compute("p", completion, GOLD, db_paths=(GYMNAST_DB,))
    assert wrapped.score == pytest.approx(bare.score) == pytest.approx(reward.max_score)
    assert wrapped.details["execution"]["details"]["sql"] == GOLD
