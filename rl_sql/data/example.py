"""One text-to-SQL example: everything a prompt and a reward need."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class SqlExample:
    id: str
    """Stable id: ``spider-train-123``, ``create-context-42``, ``spider-dev-7`` (index in dev.json)."""
    question: str
    context: str
    """CREATE TABLE statements (sql-create-context style), one per table, ';'-separated."""
    answer: str
    """Gold SQL."""
    db_id: str | None = None
    db_paths: tuple[str, ...] = ()
    """Populated SQLite files to execute on: a real database (Spider), or empty when the
    databases are synthesized from ``context`` + ``answer`` by the reward (test-suite style)."""
    source: str = ""
    meta: dict = field(default_factory=dict, compare=False, hash=False)

    def reward_kwargs(self) -> dict:
        """What ``BaseReward.compute(..., **kwargs)`` needs besides prompt, completion and answer."""
        return {"context": self.context, "db_paths": self.db_paths, "example_id": self.id}
