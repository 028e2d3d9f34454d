"""The learner: DeepSpeed-ZeRO data-parallel workers training a LoRA/QLoRA adapter with GRPO.

How one train step splits its batch (every rank applies the same rule, so the ranks stay in
lockstep without exchanging sizes):

- Every rank receives the WHOLE step batch (one object in Ray's object store), so each
  knows the token totals the loss is normalized by without a collective.
- Optimizer steps per pass: ``n = ceil(len(batch) / (world_size x per_device_batch_size x
  gradient_accumulation_steps))``, at least 1; sequence i goes to optimizer batch ``i mod n``
  (strided: each mixes prompts; sizes differ by at most one). A batch that does not divide
  evenly (zero-variance groups were skipped) gives slightly smaller optimizer batches; a
  batch smaller than one optimizer batch gives one step over what is there. No sequence is
  dropped or repeated, so the driver may pass any batch size.
- Within an optimizer batch, rank r takes its ``TrainBatch.shard(r, world_size)`` and cuts
  it into micro-batches of ``per_device_batch_size``. Every rank runs the same number of
  micro-batches (one that runs short feeds an all-masked stand-in) because ZeRO's
  collectives run in lockstep. The accumulation boundary is set by hand on the last one.
- ``learner.updates_per_step`` passes repeat this over the same batch (later passes see
  log-probs that moved away from the rollout's: the clipped ratio then matters).

Each micro-batch's loss is divided by its optimizer batch's normalizer (grpo.py) and
multiplied by world_size before backward, because DeepSpeed averages gradients over ranks:
the reduced gradient is exactly that of the optimizer batch's loss, whatever the world size.

The KL reference is the base model with the adapter disabled (``model.disable_adapter()``):
no second copy of the model. Full fine-tuning (``lora.enabled: false``) therefore needs
``grpo.beta: 0``. QLoRA (``model.quantization: 4bit``) loads the frozen base with
bitsandbytes and trains the adapter under ZeRO 0-2 (ZeRO-3 cannot partition quantized
weights; the quantized base is small anyway).

``LearnerGroup`` with ``learner.num_workers == 0`` runs one worker in this process (local
mode: world size 1, the same code); otherwise it starts Ray actors ``learner-0`` ... joined
by a gloo (CPU) or NCCL (GPU) process group whose rendezvous rank 0 hosts.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import time
from pathlib import Path

import ray
import torch

from rl_sql.config import Config
from rl_sql.engine.grpo import grpo_loss
from rl_sql.engine.types import AdapterPayload, TrainBatch
from rl_sql.engine.weight_sync import full_state_dict, gather_adapter, write_adapter
from rl_sql.models.loading import resolve_model_path

log = logging.getLogger(__name__)

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
_CKPT_TAG = "learner"


class LearnerWorker:
    """One data-parallel rank: a (PEFT) model inside a DeepSpeed engine; a Ray actor when remote."""

    def __init__(
        self,
        config: Config,
        model_path: str,
        rank: int = 0,
        world_size: int = 1,
        master_addr: str = "127.0.0.1",
        master_port: int | None = None,
    ):
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside world_size {world_size}")
        self.config = config
        self.model_path = model_path
        self.rank = rank
        self.world_size = world_size
        self.master_addr = master_addr
        self.master_port = master_port
        self.engine = None

    def node_address(self) -> tuple[str, int]:
        """This worker's IP and a free port there: rank 0 hosts the process group's rendezvous."""
        ip = ray.util.get_node_ip_address() if ray.is_initialized() else "127.0.0.1"
        return ip, _free_port()

    def ready(self) -> bool:
        return self.engine is not None

    # ------------------------------------------------------------------ setup
    def setup(self, master_addr: str | None = None, master_port: int | None = None) -> None:
        """Join the process group, load the model (quantized for QLoRA, + LoRA), wrap it in DeepSpeed.

        ``master_addr``/``master_port`` override the constructor's (the group learns rank 0's
        address only once the actors exist). A single worker with no port picks a free one.
        """
        cfg = self.config
        self.model_path = resolve_model_path(self.model_path)  # on this actor's node
        self.master_addr = master_addr or self.master_addr
        self.master_port = master_port or self.master_port
        if self.master_port is None:
            if self.world_size > 1:
                raise ValueError(f"rank {self.rank} of {self.world_size}: no master_port for the process group rendezvous")
            self.master_port = _free_port()
        gpu = torch.cuda.is_available() and cfg.cluster.use_gpu is not False
        if not gpu:
            os.environ.setdefault("DS_ACCELERATOR", "cpu")
        import deepspeed

        logging.getLogger("DeepSpeed").setLevel(logging.WARNING)
        if cfg.learner.torch_threads:
            torch.set_num_threads(cfg.learner.torch_threads)
        os.environ.update(
            RANK=str(self.rank),
            LOCAL_RANK="0",  # each actor sees its own GPU as device 0 (Ray sets CUDA_VISIBLE_DEVICES)
            WORLD_SIZE=str(self.world_size),
            MASTER_ADDR=self.master_addr,
            MASTER_PORT=str(self.master_port),
        )
        if gpu:
            torch.cuda.set_device(0)
        else:
            _skip_shm_comm_build()
        deepspeed.init_distributed(dist_backend="nccl" if gpu else "gloo", verbose=False)

        torch.manual_seed(cfg.train.seed)  # same LoRA init on every rank (DeepSpeed also broadcasts rank 0's)
        ds_config = self._ds_config()
        model = self._load_model(gpu, ds_config)
        torch.manual_seed(cfg.train.seed + 1 + self.rank)  # distinct dropout masks per rank
        trainable = [p for p in model.parameters() if p.requires_grad]
        if not trainable:
            raise ValueError("the model has no trainable parameters: check lora.target_modules against the model's module names")
        optimizer = torch.optim.AdamW(trainable, lr=cfg.learner.learning_rate, weight_decay=cfg.learner.weight_decay)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _Warmup(cfg.learner.warmup_steps))
        self.engine, self.optimizer, _, self.scheduler = deepspeed.initialize(
            model=model, optimizer=optimizer, lr_scheduler=scheduler, config=ds_config
        )
        if cfg.learner.zero_stage == 3:
            from transformers.integrations.deepspeed import unset_hf_deepspeed_config

            unset_hf_deepspeed_config()  # later from_pretrained calls (save_final) load plainly on rank 0
            self._hf_ds_config = None
        self.model = self.engine.module
        self.device = self.engine.device
        self._trainable = trainable

    def _load_model(self, gpu: bool, ds_config: dict):
        from transformers import AutoModelForCausalLM, BitsAndBytesConfig

        cfg = self.config
        dtype = _DTYPES[cfg.model.resolved_dtype]
        quantized = cfg.model.quantization != "none"
        if quantized and not cfg.lora.enabled:
            raise ValueError("model.quantization 4bit/8bit needs lora.enabled=true (QLoRA trains an adapter on a frozen quantized base)")
        if quantized and cfg.learner.zero_stage == 3:
            raise ValueError(
                "model.quantization 4bit/8bit runs with learner.zero_stage 0-2: ZeRO-3 cannot partition "
                "bitsandbytes weights. Set learner.zero_stage=2 (the quantized base is small) or model.quantization=none."
            )
        if not cfg.lora.enabled and cfg.grpo.beta > 0:
            raise ValueError(
                "grpo.beta > 0 needs lora.enabled=true: the KL reference is the base model with the adapter "
                "disabled. Set grpo.beta=0 for full fine-tuning."
            )
        kwargs: dict = {"dtype": dtype, "trust_remote_code": cfg.model.trust_remote_code}
        if quantized:
            kwargs["quantization_config"] = BitsAndBytesConfig(
                load_in_4bit=cfg.model.quantization == "4bit",
                load_in_8bit=cfg.model.quantization == "8bit",
                bnb_4bit_quant_type="nf4",
                bnb_4bit_compute_dtype=dtype,
                bnb_4bit_use_double_quant=True,
            )
            kwargs["device_map"] = {"": 0 if gpu else "cpu"}
        if cfg.learner.zero_stage == 3:
            # from_pretrained then partitions each weight as it loads (deepspeed.zero.Init): no
            # rank ever holds the whole model. Unset again after deepspeed.initialize.
            from transformers.integrations import HfDeepSpeedConfig

            self._hf_ds_config = HfDeepSpeedConfig(ds_config)  # transformers keeps only a weak reference
        model = AutoModelForCausalLM.from_pretrained(self.model_path, **kwargs)
        model.config.use_cache = False
        checkpointing = {"gradient_checkpointing_kwargs": {"use_reentrant": False}}
        if quantized:
            from peft import prepare_model_for_kbit_training

            model = prepare_model_for_kbit_training(
                model, use_gradient_checkpointing=cfg.model.gradient_checkpointing, **checkpointing
            )
        elif cfg.model.gradient_checkpointing:
            model.gradient_checkpointing_enable(**checkpointing)
        if cfg.lora.enabled:
            from peft import get_peft_model

            from rl_sql.models.lora import peft_lora_config

            model = get_peft_model(model, peft_lora_config(cfg.lora, model.config.num_hidden_layers))
        return model

    def _ds_config(self) -> dict:
        lc = self.config.learner
        return {
            "train_micro_batch_size_per_gpu": lc.per_device_batch_size,
            "gradient_accumulation_steps": lc.gradient_accumulation_steps,
            "train_batch_size": lc.per_device_batch_size * lc.gradient_accumulation_steps * self.world_size,
            "gradient_clipping": lc.max_grad_norm,
            "zero_optimization": {"stage": lc.zero_stage},
            "bf16": {"enabled": self.config.model.resolved_dtype == "bfloat16"},
            "fp16": {"enabled": self.config.model.resolved_dtype == "float16"},
            "zero_allow_untested_optimizer": True,  # torch AdamW: no cpu_adam/fused_adam build
            "wall_clock_breakdown": False,
            "steps_per_print": 10**9,
        }

    # ------------------------------------------------------------------ training
    def _completion_logprobs(self, model, prompt_ids: list[list[int]], completion_ids: list[list[int]],
                             temperature: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T) log-probs of each completion token under ``model`` with its logits divided by
        ``temperature`` (the policy the rollouts sampled from), and the (B, T) mask of real tokens.

        When prompts repeat (a GRPO group is G completions of one prompt) each distinct prompt
        runs once and its completions continue from its KV cache (``learner.share_prompts``;
        not with gradient checkpointing, which drops the cache). Otherwise sequences are
        right-padded; only the logits from the shortest prompt's last token on are computed
        (``logits_to_keep``), not the prompts'.
        """
        share = self.config.learner.share_prompts and not getattr(self.model, "is_gradient_checkpointing", False)
        if share and len({tuple(p) for p in prompt_ids}) < len(prompt_ids):
            return shared_prompt_logprobs(model, prompt_ids, completion_ids, self.device, temperature)
        B = len(prompt_ids)
        lengths = [len(p) + len(c) for p, c in zip(prompt_ids, completion_ids)]
        L, T = max(lengths), max(len(c) for c in completion_ids)
        first = min(len(p) for p in prompt_ids) - 1  # position of the first logit needed
        input_ids_BL = torch.zeros((B, L), dtype=torch.long)
        attention_BL = torch.zeros((B, L), dtype=torch.long)
        index_BT = torch.zeros((B, T), dtype=torch.long)  # kept-logit index predicting token t
        targets_BT = torch.zeros((B, T), dtype=torch.long)
        mask_BT = torch.zeros((B, T))
        for i, (p, c) in enumerate(zip(prompt_ids, completion_ids)):
            input_ids_BL[i, : lengths[i]] = torch.tensor(p + c, dtype=torch.long)
            attention_BL[i, : lengths[i]] = 1
            index_BT[i, : len(c)] = torch.arange(len(p) - 1 - first, len(p) - 1 - first + len(c))
            targets_BT[i, : len(c)] = torch.tensor(c, dtype=torch.long)
            mask_BT[i, : len(c)] = 1.0
        dev = self.device
        logits_BKV = model(
            input_ids=input_ids_BL.to(dev), attention_mask=attention_BL.to(dev), logits_to_keep=L - first
        ).logits
        V = logits_BKV.shape[-1]
        logits_BTV = logits_BKV.gather(1, index_BT.to(dev).unsqueeze(-1).expand(B, T, V))
        return token_logprobs(logits_BTV, targets_BT.to(dev), mask_BT.to(dev), temperature)

    def train_step(self, batch: TrainBatch) -> dict[str, float]:
        """One GRPO update on the step's WHOLE batch (this rank trains on its share, see the module doc).

        Returns this rank's metrics: ``loss`` (its share of the batch loss, mean over optimizer
        steps), token means ``clip_fraction``/``ratio_mean``/``kl`` (kl only when beta > 0),
        ``tokens`` (completion tokens it trained on per pass), ``tokens_per_s``, ``grad_norm``
        (global, before clipping; mean over optimizer steps), ``lr``, ``optimizer_steps``.
        """
        _check_batch(batch)
        lc = self.config.learner
        start = time.perf_counter()
        self.engine.train()
        per_optimizer_step = self.world_size * lc.per_device_batch_size * lc.gradient_accumulation_steps
        n_opt = max(1, math.ceil(len(batch) / per_optimizer_step))
        optimizer_batches = [_select(batch, range(m, len(batch), n_opt)) for m in range(n_opt)]
        acc = {"loss": 0.0, "kl": 0.0, "clip_fraction": 0.0, "ratio_mean": 0.0, "tokens": 0.0, "grad_norm": 0.0}
        for _ in range(lc.updates_per_step):
            for opt_batch in optimizer_batches:
                self._optimizer_step(opt_batch, acc)
        steps = lc.updates_per_step * n_opt
        tokens = max(acc["tokens"], 1.0)
        metrics = {
            "loss": acc["loss"] / steps,
            "clip_fraction": acc["clip_fraction"] / tokens,
            "ratio_mean": acc["ratio_mean"] / tokens,
            "tokens": acc["tokens"] / lc.updates_per_step,
            "tokens_per_s": acc["tokens"] / (time.perf_counter() - start),
            "grad_norm": acc["grad_norm"] / steps,
            "lr": float(self.scheduler.get_last_lr()[0]),
            "optimizer_steps": float(steps),
        }
        if self._uses_reference():
            metrics["kl"] = acc["kl"] / tokens
        return metrics

    def _uses_reference(self) -> bool:
        return self.config.grpo.beta > 0 and self.config.lora.enabled

    def _optimizer_step(self, opt_batch: TrainBatch, acc: dict[str, float]) -> None:
        """Forward/backward this rank's micro-batches of one optimizer batch, then one optimizer step."""
        cfg, lc = self.config, self.config.learner
        totals = {
            "num_tokens_total": float(opt_batch.num_tokens()),
            "num_sequences_total": len(opt_batch),
            "max_completion_length": cfg.rollout.max_new_tokens,
        }
        shard = opt_batch.shard(self.rank, self.world_size)
        temperature = sampling_temperature(cfg.rollout.temperature)
        n_micro = math.ceil(math.ceil(len(opt_batch) / self.world_size) / lc.per_device_batch_size)
        for k in range(n_micro):
            micro = _select(shard, range(k * lc.per_device_batch_size, min((k + 1) * lc.per_device_batch_size, len(shard))))
            live = len(micro) > 0
            if not live:  # this rank ran short: an all-masked stand-in keeps ZeRO's collectives in lockstep
                micro = TrainBatch([[0]], [[0]], [[0.0]], [0.0])
            self.engine.set_gradient_accumulation_boundary(k == n_micro - 1)
            logprobs_BT, mask_BT = self._completion_logprobs(self.engine, micro.prompt_ids, micro.completion_ids, temperature)
            if not live:
                mask_BT = torch.zeros_like(mask_BT)
            ref_BT = None
            if self._uses_reference():
                with torch.no_grad(), self.model.disable_adapter():
                    ref_BT, _ = self._completion_logprobs(self.model, micro.prompt_ids, micro.completion_ids, temperature)
            old_BT = torch.zeros_like(logprobs_BT)
            for i, lp in enumerate(micro.old_logprobs):
                old_BT[i, : len(lp)] = torch.tensor(lp, dtype=old_BT.dtype)
            advantages_B = torch.tensor(micro.advantages, dtype=torch.float32, device=self.device)
            loss, stats = grpo_loss(
                logprobs_BT, old_BT, ref_BT, advantages_B, mask_BT,
                clip_eps=cfg.grpo.clip_eps, beta=cfg.grpo.beta, loss_type=cfg.grpo.loss_type, **totals,
            )
            # DeepSpeed averages gradients over ranks: scale up so the reduced gradient is the batch loss's.
            self.engine.backward(loss * self.world_size, scale_wrt_gas=False)
            acc["loss"] += float(loss.detach())
            for key in ("kl", "clip_fraction", "ratio_mean"):
                acc[key] += stats.get(key, 0.0) * stats["tokens"]
            acc["tokens"] += stats["tokens"]
        norm = self._grad_norm_before_step()
        self.engine.step()
        if norm is None:
            recorded = self.engine.get_global_grad_norm()
            norm = float(recorded) if recorded is not None else float("nan")
        acc["grad_norm"] += norm

    def _grad_norm_before_step(self) -> float | None:
        """Without ZeRO and mixed precision DeepSpeed clips but does not record the norm: compute it
        (gradients are already averaged over ranks at the boundary). None: DeepSpeed records it."""
        if self.config.learner.zero_stage != 0 or self.config.model.resolved_dtype != "float32":
            return None
        grads = [p.grad for p in self._trainable if p.grad is not None]
        return float(torch.nn.utils.get_total_norm(grads)) if grads else 0.0

    # ------------------------------------------------------------------ weights out
    def get_adapter(self, step: int) -> AdapterPayload | None:
        """The LoRA adapter (full shapes, CPU); all ranks must call (a collective under ZeRO-3); rank 0 returns it."""
        if not self.config.lora.enabled:
            raise ValueError("get_adapter: lora.enabled is false (full fine-tuning); use get_full_state_dict")
        return gather_adapter(self.model, step, zero_stage=self.config.learner.zero_stage, keep=self.rank == 0)

    def get_full_state_dict(self, step: int) -> dict[str, torch.Tensor] | None:
        """Every weight of a fully fine-tuned model on CPU; all ranks call; rank 0 returns it."""
        if self.config.lora.enabled:
            raise ValueError("get_full_state_dict: lora.enabled is true; push the adapter with get_adapter")
        return full_state_dict(self.model, zero_stage=self.config.learner.zero_stage, keep=self.rank == 0)

    @torch.no_grad()
    def logprobs(self, prompt_ids: list[int], completion_ids: list[int], temperature: float = 1.0) -> list[float]:
        """Per-token log-probs of a fixed completion under the current policy (logits / ``temperature``),
        in eval mode (no dropout); all ranks call (ZeRO-3 gathers weights in the forward)."""
        if not prompt_ids or not completion_ids:
            raise ValueError("logprobs needs a non-empty prompt and completion")
        was_training = self.engine.training
        self.engine.eval()
        try:
            lp_BT, _ = self._completion_logprobs(self.engine, [list(prompt_ids)], [list(completion_ids)], temperature)
        finally:
            self.engine.train(was_training)
        return lp_BT[0].tolist()

    # ------------------------------------------------------------------ checkpoints
    def save_checkpoint(self, ckpt_dir: str) -> None:
        """DeepSpeed's checkpoint under ``ckpt_dir/learner/`` (trainable weights, optimizer,
        scheduler) + this rank's torch RNG state (dropout); all ranks call."""
        self.engine.save_checkpoint(ckpt_dir, tag=_CKPT_TAG, exclude_frozen_parameters=True)
        torch.save(torch.get_rng_state(), Path(ckpt_dir) / _CKPT_TAG / f"rng_rank{self.rank}.pt")

    def load_checkpoint(self, ckpt_dir: str) -> None:
        """Restore what save_checkpoint wrote (same world size and ZeRO stage); all ranks call."""
        folder = Path(ckpt_dir) / _CKPT_TAG
        if not folder.is_dir():
            raise FileNotFoundError(f"no learner checkpoint in {ckpt_dir} (expected {folder}/)")
        path, _ = self.engine.load_checkpoint(
            ckpt_dir, tag=_CKPT_TAG, load_module_strict=False, load_optimizer_states=True, load_lr_scheduler_states=True
        )
        if path is None:
            raise FileNotFoundError(f"DeepSpeed found no loadable checkpoint in {folder}")
        rng = folder / f"rng_rank{self.rank}.pt"
        if rng.is_file():
            torch.set_rng_state(torch.load(rng))
        else:
            log.warning("%s is missing (saved with another world size?): rank %d's dropout RNG starts fresh", rng, self.rank)

    def save_final(self, out_dir: str, *, merged: bool) -> dict[str, str]:
        """Rank 0 writes ``adapter/`` (a PEFT folder + tokenizer) and, if ``merged``, ``merged/``.

        The merged model is the base reloaded UNQUANTIZED in ``model.dtype`` with the adapter
        merged in: for a QLoRA run that is the full-precision base + the adapter trained on its
        4-bit version (merging into 4-bit weights would round the update away). Rank 0 holds
        the whole merged model in CPU memory while saving. Full fine-tuning writes ``model/``.
        All ranks call (weights are gathered under ZeRO-3); other ranks return {}.
        """
        out = Path(out_dir)
        if not self.config.lora.enabled:
            state = self.get_full_state_dict(-1)
            if self.rank != 0:
                return {}
            self.model.save_pretrained(str(out / "model"), state_dict=state)
            _save_tokenizer(self.model_path, out / "model")
            return {"model": str(out / "model")}
        adapter = self.get_adapter(-1)
        if self.rank != 0:
            return {}
        saved = {"adapter": str(write_adapter(adapter, out / "adapter"))}
        _save_tokenizer(self.model_path, out / "adapter")
        if merged:
            from peft import PeftModel
            from transformers import AutoModelForCausalLM

            base = AutoModelForCausalLM.from_pretrained(self.model_path, dtype=_DTYPES[self.config.model.resolved_dtype])
            merged_model = PeftModel.from_pretrained(base, saved["adapter"]).merge_and_unload()
            merged_model.save_pretrained(str(out / "merged"))
            _save_tokenizer(self.model_path, out / "merged")
            saved["merged"] = str(out / "merged")
        return saved

    def close(self) -> None:
        """Drop the engine (local mode; Ray actors are killed instead)."""
        self.engine = self.model = self.optimizer = self.scheduler = None
        self._trainable = []


class LearnerGroup:
    """``learner.num_workers`` Ray actors named ``learner-i``, or one in-process worker when 0."""

    def __init__(self, config: Config, model_path: str, *, placement_group=None, bundle_offset: int = 0):
        self.config = config
        self.workers: list = []
        self.local: LearnerWorker | None = None
        n = config.learner.num_workers
        if n == 0:
            self.local = LearnerWorker(config, model_path)
            self.local.setup()
            return
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        use_gpu = config.cluster.use_gpu
        if use_gpu is None:
            use_gpu = ray.cluster_resources().get("GPU", 0) > 0
        env = {"DS_ACCELERATOR": "cuda" if use_gpu else "cpu", "TOKENIZERS_PARALLELISM": "false"}
        remote_cls = ray.remote(LearnerWorker)
        for rank in range(n):
            opts: dict = {
                "name": f"{config.cluster.actor_name_prefix}learner-{rank}",
                "num_cpus": config.cluster.cpus_per_learner_worker,
                "num_gpus": 1 if use_gpu else 0,
                "runtime_env": {"env_vars": env},
            }
            if placement_group is not None:
                opts["scheduling_strategy"] = PlacementGroupSchedulingStrategy(
                    placement_group=placement_group, placement_group_bundle_index=bundle_offset + rank
                )
            self.workers.append(remote_cls.options(**opts).remote(config, model_path, rank, n))
        try:
            try:
                addr, port = ray.get(self.workers[0].node_address.remote(), timeout=config.cluster.placement_timeout_s)
            except ray.exceptions.GetTimeoutError:
                raise RuntimeError(
                    f"learner-0 was not scheduled within {config.cluster.placement_timeout_s} s: it asks for "
                    f"{config.cluster.cpus_per_learner_worker} CPU and {int(use_gpu)} GPU; available: "
                    f"{ray.available_resources()}. Lower learner.num_workers or cluster.cpus_per_learner_worker."
                ) from None
            ray.get([w.setup.remote(addr, port) for w in self.workers])
        except BaseException:
            self.shutdown()
            raise

    @property
    def world_size(self) -> int:
        return max(1, len(self.workers))

    def _all(self, method: str, *args, **kwargs) -> list:
        """Call ``method`` on every rank (in this process when local) and wait for all."""
        if self.local is not None:
            return [getattr(self.local, method)(*args, **kwargs)]
        if not self.workers:
            raise RuntimeError("this LearnerGroup was shut down")
        return ray.get([getattr(w, method).remote(*args, **kwargs) for w in self.workers])

    def train_step(self, batch: TrainBatch) -> dict[str, float]:
        """One GRPO update over ``batch``; the ranks' metrics combined (``combine_metrics``)."""
        arg = batch if self.local is not None else ray.put(batch)  # one copy in the object store for all ranks
        return combine_metrics(self._all("train_step", arg))

    def get_adapter(self, step: int) -> AdapterPayload:
        return self._all("get_adapter", step)[0]

    def get_full_state_dict(self, step: int) -> dict[str, torch.Tensor]:
        return self._all("get_full_state_dict", step)[0]

    def logprobs(self, prompt_ids: list[int], completion_ids: list[int], temperature: float = 1.0) -> list[float]:
        return self._all("logprobs", prompt_ids, completion_ids, temperature)[0]

    def save_checkpoint(self, ckpt_dir: str) -> None:
        self._all("save_checkpoint", ckpt_dir)

    def load_checkpoint(self, ckpt_dir: str) -> None:
        self._all("load_checkpoint", ckpt_dir)

    def save_final(self, out_dir: str, *, merged: bool) -> dict[str, str]:
        return self._all("save_final", out_dir, merged=merged)[0]

    def shutdown(self) -> None:
        """Kill this group's own actors (by handle), or drop the local engine."""
        for w in self.workers:
            ray.kill(w)
        self.workers = []
        if self.local is not None:
            self.local.close()
            self.local = None


def combine_metrics(per_rank: list[dict[str, float]]) -> dict[str, float]:
    """Ranks' metrics -> the group's. ``loss``, ``tokens``, ``tokens_per_s`` add up (each rank
    holds its share); ``kl``, ``clip_fraction``, ``ratio_mean`` are token-weighted means; the
    rest (``grad_norm``, ``lr``, ``optimizer_steps``: equal on every rank) are averaged."""
    tokens = sum(r["tokens"] for r in per_rank)
    out = {}
    for key in per_rank[0]:
        values = [r[key] for r in per_rank]
        if key in ("loss", "tokens", "tokens_per_s"):
            out[key] = sum(values)
        elif key in ("kl", "clip_fraction", "ratio_mean"):
            out[key] = sum(v * r["tokens"] for v, r in zip(values, per_rank)) / max(tokens, 1.0)
        else:
            out[key] = sum(values) / len(values)
    return out


class _Warmup:
    """LR multiplier: linear warmup over ``steps`` optimizer steps, then 1 (a picklable LambdaLR factor)."""

    def __init__(self, steps: int):
        self.steps = steps

    def __call__(self, step: int) -> float:
        return min(1.0, (step + 1) / self.steps) if self.steps else 1.0


def shared_prompt_logprobs(model, prompt_ids: list[list[int]], completion_ids: list[list[int]],
                           device: torch.device, temperature: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """``_completion_logprobs`` computing each distinct prompt once.

    Pass 1: the U distinct prompts, left-padded, with position ids that skip the padding; it
    returns their KV cache and the logits of their last token (which predict each completion's
    first token). The cache is expanded to the B sequences (an index_select, so gradients flow
    back into the prompts' activations). Pass 2: the right-padded completions on top of it.
    Same log-probs as one padded pass of prompt + completion, for ~G times fewer prompt tokens.
    """
    distinct: dict[tuple[int, ...], int] = {}
    owner_B = torch.tensor([distinct.setdefault(tuple(p), len(distinct)) for p in prompt_ids], dtype=torch.long)
    owner_dev_B = owner_B.to(device)
    prompts = list(distinct)
    U, B = len(prompts), len(prompt_ids)
    P, T = max(len(p) for p in prompts), max(len(c) for c in completion_ids)
    prompt_UP = torch.zeros((U, P), dtype=torch.long)
    prompt_mask_UP = torch.zeros((U, P), dtype=torch.long)
    for u, p in enumerate(prompts):
        prompt_UP[u, P - len(p):] = torch.tensor(p, dtype=torch.long)
        prompt_mask_UP[u, P - len(p):] = 1
    positions_UP = (prompt_mask_UP.cumsum(1) - 1).clamp(min=0)
    completion_BT = torch.zeros((B, T), dtype=torch.long)
    mask_BT = torch.zeros((B, T), dtype=torch.long)
    for i, c in enumerate(completion_ids):
        completion_BT[i, : len(c)] = torch.tensor(c, dtype=torch.long)
        mask_BT[i, : len(c)] = 1
    prompt_len_B1 = prompt_mask_UP.sum(1)[owner_B].unsqueeze(1)
    first = model(input_ids=prompt_UP.to(device), attention_mask=prompt_mask_UP.to(device),
                  position_ids=positions_UP.to(device), use_cache=True, logits_to_keep=1)
    cache = first.past_key_values
    cache.reorder_cache(owner_dev_B)  # (U, ...) -> (B, ...): sequence i reads its prompt's keys and values
    completion_BT = completion_BT.to(device)
    rest = model(input_ids=completion_BT,
                 attention_mask=torch.cat([prompt_mask_UP[owner_B], mask_BT], dim=1).to(device),
                 position_ids=(prompt_len_B1 + torch.arange(T).unsqueeze(0)).to(device),
                 past_key_values=cache, use_cache=True)
    logits_BTV = torch.cat([first.logits[owner_dev_B], rest.logits[:, :-1]], dim=1)
    return token_logprobs(logits_BTV, completion_BT, mask_BT.to(device=device, dtype=torch.float32), temperature)


def token_logprobs(logits_BTV: torch.Tensor, targets_BT: torch.Tensor, mask_BT: torch.Tensor,
                   temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, T) log-softmax(logits / temperature) of each target token, zero where masked; and the mask."""
    logits_BTV = logits_BTV.float() / temperature
    picked_BT = logits_BTV.gather(-1, targets_BT.unsqueeze(-1)).squeeze(-1)
    return (picked_BT - torch.logsumexp(logits_BTV, dim=-1)) * mask_BT, mask_BT


def sampling_temperature(temperature: float) -> float:
    """The temperature of the policy GRPO trains: the rollouts' (their log-probs are taken at it,
    ``logprobs_mode="processed_logprobs"``), 1 for greedy rollouts (vLLM then returns raw log-probs)."""
    return temperature if temperature > 0 else 1.0


def _check_batch(batch: TrainBatch) -> None:
    if len(batch) == 0:
        raise ValueError("train_step got an empty batch: skip the update when no group carries signal")
    sizes = {len(batch.prompt_ids), len(batch.old_logprobs), len(batch.advantages)}
    if sizes != {len(batch)}:
        raise ValueError(f"TrainBatch fields differ in length: {len(batch)} completions, other fields {sorted(sizes)}")
    for i, (p, c, lp) in enumerate(zip(batch.prompt_ids, batch.completion_ids, batch.old_logprobs)):
        if not p or not c:
            raise ValueError(f"sequence {i}: empty prompt or completion (drop empty completions before training)")
        if len(lp) != len(c):
            raise ValueError(f"sequence {i}: {len(c)} completion tokens but {len(lp)} rollout log-probs")


def _select(batch: TrainBatch, idx) -> TrainBatch:
    idx = list(idx)
    return TrainBatch(
        prompt_ids=[batch.prompt_ids[i] for i in idx],
        completion_ids=[batch.completion_ids[i] for i in idx],
        old_logprobs=[batch.old_logprobs[i] for i in idx],
        advantages=[batch.advantages[i] for i in idx],
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def _skip_shm_comm_build() -> None:
    """On CPU, mark DeepSpeed's shared-memory comm op unavailable so ``init_distributed`` does not
    compile it (~45 s with g++ and ninja on a fresh machine). The op serves only
    ``inference_all_reduce`` (tensor-parallel inference); training collectives use gloo either
    way. DeepSpeed caches this dict in ``deepspeed.ops`` and reads it when the backend starts."""
    import deepspeed.ops
    from deepspeed.ops.op_builder.cpu import ShareMemCommBuilder

    deepspeed.ops.__compatible_ops__[ShareMemCommBuilder.NAME] = False


def _save_tokenizer(model_path: str, folder: Path) -> None:
    from transformers import AutoTokenizer

    AutoTokenizer.from_pretrained(model_path).save_pretrained(str(folder))
