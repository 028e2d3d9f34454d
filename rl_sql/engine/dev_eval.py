"""Spider dev execution accuracy during training, judged exactly as ``rl-sql eval`` judges it.

The rollout workers (holding the current adapter) write greedy answers to the first
``train.dev_eval_examples`` questions of Spider dev; the driver extracts the SQL and judges it
with the official rules (``SpiderJudge``, DISTINCT removed, order only with ORDER BY). Each
evaluation writes ``rl-sql eval``'s outputs (verdicts, predictions, summary, report) to
``dev_eval/step_K/`` in the run folder, so the run report can pair the first and the last per
question and break the change down by hardness and by error kind.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path

import ray

from rl_sql.config import Config
from rl_sql.data import format_prompt
from rl_sql.data.example import SqlExample
from rl_sql.engine.rollout_group import RolloutGroup
from rl_sql.eval.predict import predict
from rl_sql.eval.run import Databases, EvalSet, score, spider_dev_dir, spider_dev_set, summarize, write_outputs
from rl_sql.eval.spider_eval import EvalRules, SpiderJudge

log = logging.getLogger(__name__)

DEV_EVAL_DIR = "dev_eval"
ERROR_KINDS = ("no_sql", "parse", "schema", "wrong_result")
"""The error kinds logged as ``dev/error/<kind>`` fractions even when zero (others appear when seen)."""


class RolloutGroupGenerator:
    """``rl_sql.eval.predict.Generator`` over a run's rollout workers (their current policy)."""

    def __init__(self, config: Config, rollouts: RolloutGroup, tokenizer) -> None:
        self.config, self.rollouts, self.tokenizer = config, rollouts, tokenizer

    def generate(self, examples: Sequence[SqlExample], n: int, temperature: float) -> list[list[str]]:
        prompts = [format_prompt(e, self.config.data.prompt_style, self.tokenizer) for e in examples]
        refs = self.rollouts.generate_async(prompts, n, chunks=len(self.rollouts), temperature=temperature)
        groups: list[list[str]] = [[] for _ in prompts]
        for ref, indexes in refs.items():
            for i, group in zip(indexes, ray.get(ref), strict=True):
                groups[i] = [c.text for c in group]
        return groups

    def close(self) -> None:  # the run owns the workers
        pass


def first_dev_questions(eval_set: EvalSet, n: int) -> EvalSet:
    """The first ``n`` judgeable questions of Spider dev, in dev.json order, with the questions
    skipped before the last of them (their database is missing). ``n`` >= the count: all of them."""
    examples = eval_set.examples[:n]
    last = int(examples[-1].id.rsplit("-", 1)[1]) if examples and n < len(eval_set.examples) else None
    skipped = [s for s in eval_set.skipped if last is None or int(s.id.rsplit("-", 1)[1]) < last]
    return dataclasses.replace(eval_set, examples=examples, skipped=skipped)


def dev_output_dir(run_dir: str | Path, step: int) -> Path:
    return Path(run_dir) / DEV_EVAL_DIR / f"step_{step:06d}"


class DevEvaluator:
    def __init__(self, config: Config, rollouts: RolloutGroup, tokenizer, run_dir: str | Path) -> None:
        root, origin = spider_dev_dir(None)
        self.eval_set = first_dev_questions(spider_dev_set(root, origin), config.train.dev_eval_examples)
        if not self.eval_set.examples:
            raise ValueError(f"train.dev_eval_examples={config.train.dev_eval_examples}: no Spider dev question "
                             f"of {origin} can be judged")
        self.generator = RolloutGroupGenerator(config, rollouts, tokenizer)
        self.databases = Databases(config)
        self.run_dir = Path(run_dir)
        self.rules = EvalRules()
        log.info("Spider dev evaluation: %d questions of %s (%d skipped)", len(self.eval_set.examples), origin,
                 len(self.eval_set.skipped))

    def __call__(self, step: int) -> dict[str, float]:
        """Greedy accuracy of the current policy; writes ``dev_eval/step_K/`` and returns ``dev/*`` metrics."""
        with SpiderJudge(self.rules) as judge:
            predictions = predict(self.eval_set.examples, self.generator, samples=1, temperature=0.0,
                                  judge=judge, databases=self.databases, batch_size=len(self.eval_set.examples))
            by_id = {p.id: p for p in predictions}
            verdicts, skipped = score(self.eval_set, by_id, judge, self.databases)
        summary = summarize(self.eval_set, verdicts, skipped, self.rules,
                            prediction_source=f"training step {step}, greedy, rollout workers")
        write_outputs(dev_output_dir(self.run_dir, step), summary, verdicts, skipped, by_id)
        n = summary["n"]
        metrics = {"dev/exec_accuracy": summary["accuracy"], "dev/ci_low": summary["ci95"][0],
                   "dev/ci_high": summary["ci95"][1], "dev/n": float(n)}
        # A question whose gold result is empty is "right" for any query that returns no rows: a policy
        # can learn to match those with an impossible WHERE. The accuracy over the others is the evidence.
        evidence = [v.correct for v in verdicts if not v.gold_empty]
        metrics["dev/exec_accuracy_nonempty_gold"] = sum(evidence) / max(len(evidence), 1)
        metrics["dev/nonempty_gold_n"] = float(len(evidence))
        kinds = {**dict.fromkeys(ERROR_KINDS, 0), **summary["error_kinds"]}
        metrics.update({f"dev/error/{kind}": count / n for kind, count in kinds.items()})
        log.info("step %d: Spider dev accuracy %.3f [%.3f, %.3f] on %d questions; errors %s", step,
                 summary["accuracy"], *summary["ci95"], n, summary["error_kinds"])
        return metrics
