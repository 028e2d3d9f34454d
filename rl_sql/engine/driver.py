"""The GRPO driver: one `train_step` = sample, generate, score, advantages, update, push, log.

Everything that branches lives in the functions and actors it calls; this file only
ties them together, times each phase, and checkpoints.
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path

import ray
import torch

from rl_sql.config import Config
from rl_sql.data import format_prompt, load_splits
from rl_sql.data.example import SqlExample
from rl_sql.engine import checkpoint
from rl_sql.engine.dev_eval import DevEvaluator
from rl_sql.engine.grpo import group_advantages
from rl_sql.engine.learner import LearnerGroup
from rl_sql.engine.monitoring import RunLogger
from rl_sql.engine.placement import Placement, connect, place
from rl_sql.engine.reward_pool import GroupRequest, RewardPool
from rl_sql.engine.rollout_group import RolloutGroup
from rl_sql.engine.signals import pass_at_k, reward_signals, right_counts
from rl_sql.engine.types import Completion, TrainBatch

log = logging.getLogger(__name__)


class GRPOTrainer:
    def __init__(self, config: Config, policy_path: str, run_dir: str | Path, *, resume: bool = False):
        self.config = config
        self.policy_path = policy_path
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "config.yaml").write_text(config.to_yaml())
        torch.manual_seed(config.train.seed)
        if config.rollout.top_p < 1.0:
            log.warning("rollout.top_p=%s: the rollout log-probs are the truncated distribution's and the learner's "
                        "are not, so the importance ratio starts below 1; use top_p=1 for an exact GRPO ratio",
                        config.rollout.top_p)

        splits = load_splits(config.data)
        self.train_examples = splits.rl
        self.heldout = splits.heldout[: config.train.eval_examples]
        self.paraphrases = splits.paraphrases[: config.train.eval_examples]
        from rl_sql.engine.sampler import PromptSampler

        self.sampler = PromptSampler(self.train_examples, seed=config.train.seed)
        self.total_steps = config.train.max_steps or math.ceil(
            config.train.epochs * len(self.train_examples) / config.train.prompts_per_step
        )
        self.tokenizer = _load_tokenizer(policy_path)

        connect(config)
        self.placement: Placement = place(config)
        self.learner = LearnerGroup(
            config, policy_path, placement_group=self.placement.pg, bundle_offset=self.placement.learner_offset
        )
        self.rollouts = RolloutGroup(config, policy_path, self.placement)
        self.dev_eval = DevEvaluator(config, self.rollouts, self.tokenizer, self.run_dir) if config.train.dev_eval_examples else None
        self.rewards = RewardPool(
            config.reward,
            self.placement.reward_actors,
            num_cpus=self.placement.reward_cpus,
            timeout_s=config.cluster.reward_batch_timeout_s,
            strategy=self.placement.reward_strategy,
            name_prefix=config.cluster.actor_name_prefix,
        )
        self.step = 0
        if resume:
            self._resume()
        self.logger = RunLogger(config, self.run_dir, total_steps=self.total_steps, start_step=self.step)

    # ------------------------------------------------------------------ the step
    def train_step(self) -> dict[str, float]:
        cfg, t = self.config, _Timer()
        # 1. sample prompts
        examples = self.sampler.next_batch(cfg.train.prompts_per_step)
        prompts = [format_prompt(e, cfg.data.prompt_style, self.tokenizer) for e in examples]
        # 2-3. generate, and score each chunk as soon as it arrives
        completions, results, phase = self._generate_and_score(examples, prompts, cfg.grpo.num_generations)
        t.add(**phase)
        # 4. group-relative advantages
        rewards_PG = torch.tensor([[r.score for r in results[i]] for i in range(len(examples))])
        advantages_PG, zero_var_P = group_advantages(rewards_PG, scale=cfg.grpo.scale_rewards and cfg.grpo.loss_type == "grpo")
        batch = _train_batch(completions, advantages_PG, skip=zero_var_P if cfg.grpo.skip_zero_variance_groups else None)
        # 5. update the policy
        update = self.learner.train_step(batch) if len(batch) else {}
        t.lap("update")
        # 6. push the adapter to every rollout worker before the next generation
        self.step += 1
        t.add(push=self._push())
        parity = self._parity_probe(completions) if _every(self.step, cfg.train.parity_every) else {}
        t.lap("parity")
        # 7. log
        metrics = {
            **reward_signals(results, completions),
            **{k: float(v) for k, v in update.items()},
            **parity,
            **t.as_metrics(),
            "grpo/zero_variance_frac": float(zero_var_P.float().mean()),
            "grpo/trained_sequences": float(len(batch)),
            "data/epoch": self.sampler.epochs_done,
        }
        if "kl" in update:  # computed only with grpo.beta > 0: absent otherwise, never a made-up 0
            metrics["kl_divergence"] = float(update["kl"])
        if cfg.train.eval_every and self.step % cfg.train.eval_every == 0:
            metrics.update(self.evaluate())
        self.logger.log(self.step, metrics)
        if self.step % cfg.train.checkpoint_every == 0 or self.step == self.total_steps:
            self.save_checkpoint()
        return metrics

    def fit(self) -> list[dict[str, float]]:
        history = []
        if self.step == 0:
            start = self.screen_prompts() if self.config.train.screen_samples else {}
            start.update(self.evaluate())
            self.logger.log(0, start)
            history.append(start)
        while self.step < self.total_steps:
            history.append(self.train_step())
        if not self.config.train.eval_every or self.step % self.config.train.eval_every:
            final = self.evaluate()
            self.logger.log(self.step, final)
            history.append(final)
        return history

    # ------------------------------------------------------------------ phases
    def _generate_and_score(self, examples: list[SqlExample], prompts: list[str], n: int, **sampling):
        start = time.perf_counter()
        chunks = self.config.rollout.chunks_per_worker * len(self.rollouts)
        refs = self.rollouts.generate_async(prompts, n, chunks=chunks, **sampling)
        completions: list[list[Completion]] = [[] for _ in prompts]
        pending, max_queue = list(refs), 0
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                for i, group in zip(refs[ref], ray.get(ref)):
                    completions[i] = group
                    e = examples[i]
                    self.rewards.submit_group(
                        GroupRequest(i, prompts[i], tuple(c.text for c in group), e.answer, e.reward_kwargs())
                    )
            max_queue = max(max_queue, len(self.rewards._pending))
        generated = time.perf_counter()
        results = self.rewards.collect()
        scored = time.perf_counter()
        tokens = sum(len(c.token_ids) for group in completions for c in group)
        phase = {
            "generate": generated - start,
            "score": scored - generated,
            "perf/rollout_tokens_per_s": tokens / max(generated - start, 1e-9),
            "queue/reward_pending_max": float(max_queue),
        }
        return completions, results, phase

    def _push(self) -> float:
        if self.config.lora.enabled:
            return self.rollouts.push_adapter(self.learner.get_adapter(self.step))
        return self.rollouts.push_full_weights(self.step, self.learner.get_full_state_dict(self.step))

    def _parity_probe(self, completions: list[list[Completion]]) -> dict[str, float]:
        """Rollout and learner log-probs of one fixed completion, after the push."""
        probe = completions[0][0]
        learner_lp = torch.tensor(self.learner.logprobs(probe.prompt_token_ids, probe.token_ids))
        worst = 0.0
        for rollout_lp in self.rollouts.score_logprobs(probe.prompt_token_ids, probe.token_ids):
            worst = max(worst, float((torch.tensor(rollout_lp) - learner_lp).abs().mean()))
        ok = worst <= self.config.train.parity_tolerance
        if not ok:
            log.error("parity probe failed at step %d: mean |dlogp| %.4f > %.4f", self.step, worst, self.config.train.parity_tolerance)
        return {"parity/mean_abs_dlogp": worst, "parity/ok": float(ok)}

    def screen_prompts(self) -> dict[str, float]:
        """Keep the GRPO prompts the policy answers sometimes, not always: ``train.screen_samples``
        samples each at the rollout temperature. A group whose samples are all right or all wrong
        carries no execution signal, and from a weak start most are all wrong. The kept ids go to
        ``screen.json`` in the run folder (``--resume`` reads them back)."""
        n, examples = self.config.train.screen_samples, self.sampler.examples
        prompts = [format_prompt(e, self.config.data.prompt_style, self.tokenizer) for e in examples]
        _, results, phase = self._generate_and_score(examples, prompts, n)
        right = right_counts(results, len(examples))
        kept = [e for e, k in zip(examples, right) if 0 < k < n]
        summary = {"screen/prompts": len(examples), "screen/kept": len(kept), "screen/never_right": right.count(0),
                   "screen/always_right": right.count(n), "time/screen": phase["generate"] + phase["score"]}
        log.info("prompt screen (%d samples each): kept %d of %d GRPO prompts; %d never right, %d always right (%.0f s)",
                 n, len(kept), len(examples), summary["screen/never_right"], summary["screen/always_right"], summary["time/screen"])
        if not kept:
            raise RuntimeError(
                f"train.screen_samples={n}: none of the {len(examples)} GRPO prompts had both right and wrong samples "
                "(the policy answers none of them, or all); raise train.screen_samples, or set it to 0 to train on every prompt"
            )
        (self.run_dir / SCREEN_FILE).write_text(json.dumps({**summary, "kept_ids": [e.id for e in kept]}, indent=1))
        self._use_prompts(kept)
        return {k: float(v) for k, v in summary.items()}

    def _use_prompts(self, examples: list[SqlExample]) -> None:
        from rl_sql.engine.sampler import PromptSampler

        self.train_examples = examples
        self.sampler = PromptSampler(examples, seed=self.config.train.seed)
        if not self.config.train.max_steps:
            self.total_steps = math.ceil(self.config.train.epochs * len(examples) / self.config.train.prompts_per_step)
            if getattr(self, "logger", None) is not None:
                self.logger.set_total(self.total_steps)

    def evaluate(self) -> dict[str, float]:
        """Execution accuracy on the held-out questions (unseen, with gold SQL that is nowhere in
        training: ``eval/*``) and, with ``data.paraphrase_heldout``, on unseen rewordings of GRPO
        prompts (their gold never shown: ``eval/paraphrase_*``). Greedy, and with
        ``train.eval_samples`` also sampled at the rollout temperature, with pass@k over those
        samples (the share of questions with a right sample: what GRPO's sharpening can reach).
        With ``train.dev_eval_examples``, also Spider dev with the official rules (``dev/*``)."""
        out: dict[str, float] = {}
        for prefix, examples in (("eval/", self.heldout), ("eval/paraphrase_", self.paraphrases)):
            if examples:
                out.update(self._evaluate_set(prefix, examples))
        if self.dev_eval is not None:
            start = time.perf_counter()
            out.update(self.dev_eval(self.step))
            out["time/dev_eval"] = time.perf_counter() - start
        return out

    def _evaluate_set(self, prefix: str, examples: list[SqlExample]) -> dict[str, float]:
        prompts = [format_prompt(e, self.config.data.prompt_style, self.tokenizer) for e in examples]
        passes = {"": (1, {"temperature": 0.0})}
        if self.config.train.eval_samples:
            passes["sampled_"] = (self.config.train.eval_samples, {})
        out = {f"{prefix}n": float(len(examples))}
        verdicts: dict[str, list[float]] = {}
        for kind, (n, sampling) in passes.items():
            completions, results, _ = self._generate_and_score(examples, prompts, n, **sampling)
            signals = reward_signals(results, completions)
            out.update({f"{prefix}{kind}exec_accuracy": signals["reward/exec_match"],
                        f"{prefix}{kind}reward_mean": signals["reward/mean"],
                        f"{prefix}{kind}runs_without_error": signals["sql/runs_frac"]})
            if n > 1:
                out[f"{prefix}{kind}pass_at_k"] = pass_at_k(results)
            verdicts[kind or "greedy"] = [k / n for k in right_counts(results, len(examples))]
        record = {"step": self.step, "set": prefix, "ids": [e.id for e in examples], **verdicts}
        with open(self.run_dir / VERDICTS_FILE, "a") as f:  # per question, for the report's paired CIs
            f.write(json.dumps(record) + "\n")
        return out

    # ------------------------------------------------------------------ state
    def save_checkpoint(self) -> Path:
        ckpt = checkpoint.step_dir(self.run_dir, self.step)
        ckpt.mkdir(parents=True, exist_ok=True)
        self.learner.save_checkpoint(str(ckpt / "learner"))
        checkpoint.save_state(ckpt, step=self.step, sampler_state=self.sampler.state_dict())
        checkpoint.prune(self.run_dir)
        return ckpt

    def _resume(self) -> None:
        ckpt = checkpoint.latest(self.run_dir)
        if ckpt is None:
            raise FileNotFoundError(f"--resume: no complete checkpoint under {self.run_dir}/checkpoints")
        self.learner.load_checkpoint(str(ckpt / "learner"))
        state = checkpoint.load_state(ckpt)
        self.step = state["step"]
        if self.config.train.screen_samples:
            self._use_prompts(_screened(self.run_dir / SCREEN_FILE, self.train_examples))
        self.sampler.load_state_dict(state["sampler"])
        self._push()
        log.info("resumed from %s at step %d (data epoch %.2f)", ckpt, self.step, self.sampler.epochs_done)

    def save_final(self) -> dict[str, str]:
        return self.learner.save_final(str(self.run_dir / "final"), merged=self.config.train.save_merged)

    def shutdown(self) -> None:
        self.logger.close()
        self.rewards.shutdown()
        self.rollouts.shutdown()
        self.learner.shutdown()
        self.placement.release()


SCREEN_FILE = "screen.json"
VERDICTS_FILE = "eval_verdicts.jsonl"


def _screened(path: Path, examples: list[SqlExample]) -> list[SqlExample]:
    """The prompts a run's screen kept, in their original order."""
    if not path.is_file():
        raise FileNotFoundError(f"--resume with train.screen_samples: {path} (the prompt screen's result) is missing")
    kept = set(json.loads(path.read_text())["kept_ids"])
    found = [e for e in examples if e.id in kept]
    if len(found) != len(kept):
        raise ValueError(f"--resume: {len(kept) - len(found)} of the {len(kept)} screened prompts in {path} are not "
                         "in this config's GRPO split; resume with the config the run started with")
    return found


def _train_batch(completions: list[list[Completion]], advantages_PG: torch.Tensor, skip: torch.Tensor | None) -> TrainBatch:
    batch = TrainBatch([], [], [], [])
    for p, group in enumerate(completions):
        if skip is not None and bool(skip[p]):
            continue
        for g, c in enumerate(group):
            if not c.token_ids:
                continue
            batch.prompt_ids.append(c.prompt_token_ids)
            batch.completion_ids.append(c.token_ids)
            batch.old_logprobs.append(c.logprobs)
            batch.advantages.append(float(advantages_PG[p, g]))
    return batch


def _every(step: int, n: int) -> bool:
    return n > 0 and step % n == 0


def _load_tokenizer(path: str):
    from rl_sql.models.loading import load_tokenizer

    return load_tokenizer(path)


class _Timer:
    def __init__(self):
        self.times: dict[str, float] = {}
        self.extra: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.times[name] = now - self._last
        self._last = now

    def add(self, **values: float) -> None:
        for key, value in values.items():
            (self.extra if "/" in key else self.times)[key] = value
        self._last = time.perf_counter()

    def as_metrics(self) -> dict[str, float]:
        out = {f"time/{k}": v for k, v in self.times.items()}
        out["time/step"] = sum(self.times.values())
        return {**out, **self.extra}


