"""rl_sql's rollout worker on SmolLM2-135M-Instruct beside bare ``vllm.LLM.generate``, side by side
in one run, on the same prompts and sampling settings.

Prompts: P chat prompts of the embedded Spider training set (whole-database schema), as a GRPO
step of jobs/smol_grpo.yaml sends them; n = G samples each at the recipe's temperature,
``max_tokens`` and stop strings, seeded per prompt.

- ``bare vLLM``: one ``vllm.LLM`` (in-process engine, eager, the recipe's KV cache and batch
  budget), the recipe's generation dtype, ``generate`` over all prompts: what a user would run.
- ``rl_sql RolloutWorker``: ``RolloutWorker.generate`` as a run calls it (merged adapter weights
  in float32 on a CPU, sampled tokens' log-probs at the sampling temperature), with all prompts
  in one call (``rollout.chunks_per_worker: 1``) and in 4 pieces (4 calls, the old default).

Tokens/s counts generated tokens over wall time; median of ``--repeats`` after one warm-up.

    python benchmarks/rollout_throughput.py [--prompts 8] [--generations 8] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rl_sql.config import Config  # noqa: E402
from rl_sql.data import format_prompt, load_examples  # noqa: E402
from rl_sql.engine.rollout import RolloutWorker, _engine_args, rollout_env_vars  # noqa: E402
from rl_sql.models.loading import encode_prompt, load_tokenizer, resolve_model_path  # noqa: E402

RECIPE = ROOT / "jobs/smol_grpo.yaml"


def timed(fn, repeats: int) -> tuple[float, int]:
    fn()  # warm-up
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        tokens = fn()
        runs.append((time.perf_counter() - start, tokens))
    seconds = statistics.median(r[0] for r in runs)
    return seconds, runs[0][1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--prompts", type=int, default=8)
    p.add_argument("--generations", type=int, default=8)
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args()
    config = Config.load(RECIPE)
    for key, value in rollout_env_vars(config).items():
        os.environ.setdefault(key, value)
    model_path = resolve_model_path(config.model.name_or_path)
    tokenizer = load_tokenizer(model_path)
    examples = random.Random(0).sample(load_examples(config.data), args.prompts)
    prompts = [format_prompt(e, "chat", tokenizer) for e in examples]
    rc, n = config.rollout, args.generations

    from vllm import LLM, SamplingParams

    worker = RolloutWorker(config, model_path)  # merge mode on a CPU: the engine runs in float32
    engine_dtype = worker.llm.llm_engine.model_config.dtype

    def rl_sql_worker(pieces: int):
        def run() -> int:
            bounds = [round(i * len(prompts) / pieces) for i in range(pieces + 1)]
            groups = []
            for a, b in zip(bounds, bounds[1:]):
                groups += worker.generate(prompts[a:b], n, seed=a)
            return sum(len(c.token_ids) for g in groups for c in g)
        return run

    results = {
        "rl_sql RolloutWorker, 1 call a step": timed(rl_sql_worker(1), args.repeats),
        "rl_sql RolloutWorker, 4 calls a step": timed(rl_sql_worker(4), args.repeats),
    }
    worker.close()
    del worker

    engine = _engine_args(config, model_path, 0, merging=True)
    bare = LLM(model=model_path, dtype=engine["dtype"], seed=0, max_model_len=rc.max_model_len, enforce_eager=True,
               kv_cache_memory_bytes=engine["kv_cache_memory_bytes"], enable_chunked_prefill=False,
               max_num_batched_tokens=engine["max_num_batched_tokens"])
    params = [SamplingParams(n=n, temperature=rc.temperature, max_tokens=rc.max_new_tokens, stop=list(rc.stop) or None,
                             seed=1000 * i) for i in range(len(prompts))]
    ids = [{"prompt_token_ids": encode_prompt(tokenizer, q)} for q in prompts]

    def bare_run() -> int:
        outs = bare.generate(ids, params, use_tqdm=False)
        return sum(len(c.token_ids) for o in outs for c in o.outputs)

    results = {f"bare vllm.LLM.generate ({engine['dtype']})": timed(bare_run, args.repeats), **results}
    print(f"SmolLM2-135M-Instruct; {args.prompts} prompts x n={n}, T={rc.temperature}, max_tokens {rc.max_new_tokens}, "
          f"stop {rc.stop!r}; worker engine dtype {engine_dtype}; tokens differ a little between systems (sampling)")
    base_rate = None
    print(f"| system | s (median of {args.repeats}) | generated tokens | tokens/s | vs bare vLLM |")
    print("|---|---|---|---|---|")
    for name, (seconds, tokens) in results.items():
        rate = tokens / seconds
        base_rate = base_rate or rate
        print(f"| {name} | {seconds:.1f} | {tokens} | {rate:.0f} | {rate / base_rate:.2f}x |")


if __name__ == "__main__":
    main()
