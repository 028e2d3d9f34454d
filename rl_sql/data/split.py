"""Held-out splits that do not leak gold SQL into training.

Spider pairs several paraphrased questions with one gold query, so a plain random split
of questions mostly measures memorization. ``split_examples`` groups examples by their
normalized gold SQL and assigns whole groups, so no held-out gold query (in normal form)
appears in training. ``split_by_database`` holds out whole databases (unseen schemas).
Both are deterministic for a seed and keep the input order within each side.
``paraphrase_pairs`` finds the other side of that pairing: two differently worded questions
with one gold query over one database; ``hold_out_paraphrases`` holds one of each pair out of
the GRPO prompts as a second evaluation set.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from typing import NamedTuple

from rl_sql.data.example import SqlExample
from rl_sql.data.normalize import normalize_question, normalize_sql


def _check_fraction(heldout_fraction: float) -> None:
    if not 0.0 <= heldout_fraction < 1.0:
        raise ValueError(f"heldout_fraction must be in [0, 1), got {heldout_fraction}")


def _split_groups(
    examples: Sequence[SqlExample], keys: list[str], heldout_fraction: float, seed: int
) -> tuple[list[SqlExample], list[SqlExample]]:
    """Shuffle the distinct keys, hold out keys until their examples reach the fraction."""
    _check_fraction(heldout_fraction)
    sizes: dict[str, int] = defaultdict(int)
    for key in keys:
        sizes[key] += 1
    order = sorted(sizes)
    random.Random(seed).shuffle(order)
    target = round(heldout_fraction * len(examples))
    heldout_keys: set[str] = set()
    taken = 0
    for key in order:
        if taken >= target:
            break
        heldout_keys.add(key)
        taken += sizes[key]
    train = [ex for ex, key in zip(examples, keys) if key not in heldout_keys]
    heldout = [ex for ex, key in zip(examples, keys) if key in heldout_keys]
    return train, heldout


def split_examples(
    examples: Sequence[SqlExample], heldout_fraction: float, seed: int = 0
) -> tuple[list[SqlExample], list[SqlExample]]:
    """(train, heldout) with whole normalized-gold-SQL groups on one side.

    The held-out side gets about ``heldout_fraction`` of the examples (groups are added in a
    seeded random order until the count is reached, so it can overshoot by one group).
    The key is the SQL text alone: the same query over two databases is one group, so it
    never appears on both sides.
    """
    keys = [normalize_sql(ex.answer) for ex in examples]
    return _split_groups(examples, keys, heldout_fraction, seed)


def split_by_database(
    examples: Sequence[SqlExample], heldout_fraction: float, seed: int = 0
) -> tuple[list[SqlExample], list[SqlExample]]:
    """(train, heldout) with whole databases on one side (about ``heldout_fraction`` of the examples).

    Raises when an example has no ``db_id`` (sql-create-context rows have none: use
    ``split_examples`` for them).
    """
    missing = sum(ex.db_id is None for ex in examples)
    if missing:
        raise ValueError(
            f"split_by_database: {missing} of {len(examples)} examples have no db_id; "
            "use split_examples for sources without databases (create-context)"
        )
    return _split_groups(examples, [ex.db_id or "" for ex in examples], heldout_fraction, seed)


class TrainingSplits(NamedTuple):
    """What each stage sees: ``sft`` (supervised targets), ``rl`` (GRPO prompts), ``heldout``
    (evaluation: no gold query of it anywhere in training) and ``paraphrases`` (a second evaluation
    set, empty unless asked for: unseen questions whose gold query is a GRPO prompt's, see
    ``hold_out_paraphrases``)."""

    sft: list[SqlExample]
    rl: list[SqlExample]
    heldout: list[SqlExample]
    paraphrases: list[SqlExample] = []


def training_splits(
    examples: Sequence[SqlExample],
    heldout_fraction: float,
    rl_fraction: float = 0.0,
    seed: int = 0,
    paraphrase_heldout: bool = False,
) -> TrainingSplits:
    """Held-out split first (``split_examples``), then, when ``rl_fraction > 0``, the rest is split
    again the same way (seed + 1) into SFT and RL parts, so no RL gold query is an SFT target.
    With ``rl_fraction == 0`` SFT and RL share the whole training split. With
    ``paraphrase_heldout`` (needs ``rl_fraction > 0``) one question of each paraphrase pair of the
    RL part leaves it for ``paraphrases``."""
    train, heldout = split_examples(examples, heldout_fraction, seed)
    if rl_fraction <= 0.0:
        if paraphrase_heldout:
            raise ValueError(
                "data.paraphrase_heldout needs data.rl_fraction > 0: with SFT on the whole training split "
                "every paraphrase's gold query is an SFT target, so its accuracy would measure memorization"
            )
        return TrainingSplits(train, list(train), heldout)
    sft, rl = split_examples(train, rl_fraction, seed + 1)
    if not sft or not rl:
        raise ValueError(
            f"data.rl_fraction={rl_fraction} splits {len(train)} training examples into {len(sft)} for SFT "
            f"and {len(rl)} for RL; both need some: pick a fraction strictly between 0 and 1 or add data"
        )
    if not paraphrase_heldout:
        return TrainingSplits(sft, rl, heldout)
    rl, paraphrases = hold_out_paraphrases(rl)
    if not paraphrases:
        raise ValueError(
            f"data.paraphrase_heldout: the {len(rl)} GRPO prompts hold no two differently worded questions "
            "with one gold query over one database; turn it off for this data"
        )
    return TrainingSplits(sft, rl, heldout, paraphrases)


def hold_out_paraphrases(examples: Sequence[SqlExample]) -> tuple[list[SqlExample], list[SqlExample]]:
    """(kept, held out): the second question of each ``paraphrase_pairs`` pair is held out, the
    rest kept in input order. Each held-out question is unseen, and its gold query is never shown
    to the policy: its twin stays a GRPO prompt, whose gold only scores samples. So its accuracy
    measures whether what GRPO learns from the reward carries to another wording of a question
    (``heldout`` measures new queries)."""
    out = {b.id for _, b in paraphrase_pairs(examples)}
    return [ex for ex in examples if ex.id not in out], [ex for ex in examples if ex.id in out]


def paraphrase_pairs(examples: Sequence[SqlExample]) -> list[tuple[SqlExample, SqlExample]]:
    """Pairs of differently worded questions with the same normalized gold SQL over the same
    database (the first two differently worded ones of each such group, groups in input order);
    no example is in two pairs. A study trains on one side and evaluates on the other (jobs/study_grpo_transfer.py)."""
    groups: dict[tuple[str, str], list[SqlExample]] = defaultdict(list)
    for ex in examples:
        group = groups[(ex.db_id or "", normalize_sql(ex.answer))]
        if len(group) < 2 and all(normalize_question(ex.question) != normalize_question(g.question) for g in group):
            group.append(ex)
    return [(g[0], g[1]) for g in groups.values() if len(g) == 2]
