"""Prompt sampling with a resumable cursor.

Each epoch is a seeded permutation of the training examples; the cursor is
(epoch, position). Saving and restoring the cursor resumes exactly where the run
stopped: no prompt is lost or repeated.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass

from rl_sql.data.example import SqlExample


@dataclass
class Cursor:
    epoch: int = 0
    position: int = 0
    consumed: int = 0


class PromptSampler:
    def __init__(self, examples: list[SqlExample], seed: int):
        if not examples:
            raise ValueError("no training examples: check data.source / data.path and the held-out split")
        self.examples = examples
        self.seed = seed
        self.cursor = Cursor()
        self._order = self._permutation(0)

    def _permutation(self, epoch: int) -> list[int]:
        order = list(range(len(self.examples)))
        random.Random(f"{self.seed}:{epoch}").shuffle(order)
        return order

    def next_batch(self, size: int) -> list[SqlExample]:
        """The next ``size`` examples, crossing into the next epoch when this one runs out."""
        batch = []
        while len(batch) < size:
            if self.cursor.position >= len(self._order):
                self.cursor.epoch += 1
                self.cursor.position = 0
                self._order = self._permutation(self.cursor.epoch)
            batch.append(self.examples[self._order[self.cursor.position]])
            self.cursor.position += 1
            self.cursor.consumed += 1
        return batch

    @property
    def epochs_done(self) -> float:
        return self.cursor.consumed / len(self.examples)

    def state_dict(self) -> dict:
        return asdict(self.cursor)

    def load_state_dict(self, state: dict) -> None:
        self.cursor = Cursor(**state)
        self._order = self._permutation(self.cursor.epoch)
