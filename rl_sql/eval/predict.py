"""Predictions from a model for ``rl-sql eval``: generate, extract the SQL, vote.

Two sources of completions:

- ``LocalGenerator``: a model folder (or hub id), optionally with a PEFT LoRA adapter folder,
  run by the engine's vLLM ``RolloutWorker`` *in this process* (no Ray: evaluation has no
  learner, so the in-process engine's hold on torch's thread count does no harm). Prompts are
  ``rl_sql.data.format_prompt`` in the configured style with the model's tokenizer.
- ``EndpointGenerator``: any OpenAI-compatible server (vLLM, TGI, a hosted API) through the
  ``openai`` client: chat completions with ``chat_messages`` for the ``chat`` style, plain
  completions with the ``plain`` prompt otherwise.

Greedy decoding (temperature 0, one sample) is the default. With ``samples = k > 1`` each
example gets k samples at the given temperature and ``majority_vote`` picks one: the
samples' SQL runs on the example's databases, samples that return equal results on every
database form one class (``results_match``; rows compared in order only when both queries
contain ORDER BY), the largest class wins (ties: the class whose first sample came first),
and its first sample is the prediction. Samples with no SQL or that fail anywhere do not
vote; when none runs, the first sample is the prediction.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from rl_sql.config import Config
from rl_sql.data import chat_messages, format_prompt
from rl_sql.data.example import SqlExample
from rl_sql.eval.spider_eval import SpiderJudge, order_matters, prepare
from rl_sql.sql.compare import results_match
from rl_sql.sql.extract import extract_sql
from rl_sql.sql.types import ExecResult

if TYPE_CHECKING:  # torch is imported only when a local model is used
    from rl_sql.engine.types import AdapterPayload

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Prediction:
    """What is scored for one example: the SQL (None = the model wrote none) and where it came from."""

    id: str
    db_id: str | None
    sql: str | None
    completion: str | None = None
    votes: int | None = None
    """Size of the winning class in a majority vote (None without voting)."""
    samples: int = 1
    extra: dict = field(default_factory=dict, compare=False)


class Generator(Protocol):
    def generate(self, examples: Sequence[SqlExample], n: int, temperature: float) -> list[list[str]]:
        """[example][n] completion texts."""
        ...

    def close(self) -> None: ...


def read_adapter_folder(folder: str | Path) -> AdapterPayload:
    """A saved PEFT adapter (adapter_config.json + adapter_model.safetensors) as the payload a
    rollout worker loads."""
    from safetensors.torch import load_file

    from rl_sql.engine.types import AdapterPayload

    folder = Path(folder)
    weights = folder / "adapter_model.safetensors"
    if not weights.is_file():
        raise FileNotFoundError(f"{weights} does not exist: --adapter must be a folder PEFT's save_pretrained wrote")
    return AdapterPayload(
        step=0,
        peft_config=json.loads((folder / "adapter_config.json").read_text()),
        tensors=load_file(str(weights)),
    )


class LocalGenerator:
    """A local model (plus an optional LoRA adapter folder) in an in-process vLLM RolloutWorker."""

    def __init__(self, config: Config, model: str, adapter_dir: str | None = None, *, seed: int = 0) -> None:
        from rl_sql.engine.rollout import RolloutWorker
        from rl_sql.models.loading import load_tokenizer, resolve_model_path

        self.config = config
        self.seed = seed
        model_path = resolve_model_path(model)
        self.tokenizer = load_tokenizer(model_path, trust_remote_code=config.model.trust_remote_code)
        self.worker = RolloutWorker(config, model_path)
        if adapter_dir is not None:
            self.worker.load_adapter(read_adapter_folder(adapter_dir))

    def generate(self, examples: Sequence[SqlExample], n: int, temperature: float) -> list[list[str]]:
        prompts = [format_prompt(e, self.config.data.prompt_style, self.tokenizer) for e in examples]
        groups = self.worker.generate(
            prompts, n, temperature=temperature, max_new_tokens=self.config.rollout.max_new_tokens, seed=self.seed
        )
        return [[c.text for c in group] for group in groups]

    def close(self) -> None:
        self.worker.close()


class EndpointGenerator:
    """An OpenAI-compatible server: chat completions (``chat`` style) or completions (``plain``)."""

    def __init__(
        self,
        base_url: str,
        model_name: str,
        *,
        prompt_style: str,
        max_new_tokens: int,
        stop: Sequence[str] = (),
        api_key: str | None = None,
        concurrency: int = 8,
        timeout_s: float = 120.0,
        seed: int = 0,
    ) -> None:
        from openai import OpenAI

        # Local servers accept any key; the client insists on one.
        key = api_key or os.environ.get("OPENAI_API_KEY") or "EMPTY"
        self.client = OpenAI(base_url=base_url, api_key=key, timeout=timeout_s, max_retries=2)
        self.model_name = model_name
        self.prompt_style = prompt_style
        self.max_new_tokens = max_new_tokens
        self.stop = list(stop) or None  # rollout.stop, as the local path applies it
        self.concurrency = concurrency
        self.seed = seed

    def _one(self, example: SqlExample, n: int, temperature: float) -> list[str]:
        texts: list[str] = []
        while len(texts) < n:  # some servers ignore n and answer with one choice
            want = n - len(texts)
            if self.prompt_style == "chat":
                reply = self.client.chat.completions.create(
                    model=self.model_name,
                    messages=chat_messages(example),
                    n=want,
                    temperature=temperature,
                    max_tokens=self.max_new_tokens,
                    stop=self.stop,
                    seed=self.seed + len(texts),
                )
                texts.extend(choice.message.content or "" for choice in reply.choices)
            else:
                reply = self.client.completions.create(
                    model=self.model_name,
                    prompt=format_prompt(example, "plain"),
                    n=want,
                    temperature=temperature,
                    max_tokens=self.max_new_tokens,
                    stop=self.stop,
                    seed=self.seed + len(texts),
                )
                texts.extend(choice.text for choice in reply.choices)
            if not reply.choices:
                raise RuntimeError(f"the endpoint returned no choices for example {example.id}")
        return texts[:n]

    def generate(self, examples: Sequence[SqlExample], n: int, temperature: float) -> list[list[str]]:
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(lambda e: self._one(e, n, temperature), examples))

    def close(self) -> None:
        self.client.close()


def majority_vote(sqls: Sequence[str | None], results: Sequence[Sequence[ExecResult] | None]) -> tuple[int, int]:
    """(index of the chosen sample, size of its class); rules in the module docstring.

    ``results[i]`` holds sample i's results on each database (None when it has no SQL).
    """
    if not sqls or len(sqls) != len(results):
        raise ValueError(f"majority_vote needs one result list per sample, got {len(sqls)} and {len(results)}")
    classes: list[list[int]] = []  # sample indices, first one is the representative
    for i, (sql, result) in enumerate(zip(sqls, results)):
        if sql is None or result is None or not all(r.ok for r in result):
            continue
        for members in classes:
            rep = members[0]
            ordered = order_matters(sqls[rep]) and order_matters(sql)
            if all(results_match(a, b, order_matters=ordered) for a, b in zip(results[rep], result)):
                members.append(i)
                break
        else:
            classes.append([i])
    if not classes:
        return 0, 0
    best = max(classes, key=len)  # max keeps the first of equal sizes: the earliest class
    return best[0], len(best)


def predict(
    examples: Sequence[SqlExample],
    generator: Generator,
    *,
    samples: int,
    temperature: float,
    judge: SpiderJudge,
    databases: Callable[[SqlExample], tuple[str, ...]],
    batch_size: int = 64,
) -> list[Prediction]:
    """One prediction per example: the greedy completion's SQL, or the majority vote of ``samples``.

    ``databases(example)`` gives the paths the vote runs on (empty: no vote possible, the
    first sample is taken).
    """
    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    if samples == 1 and temperature != 0.0:
        log.info("one sample per example at temperature %.2f (greedy is --temperature 0)", temperature)
    predictions: list[Prediction] = []
    for start in range(0, len(examples), batch_size):
        batch = list(examples[start : start + batch_size])
        groups = generator.generate(batch, samples, temperature)
        for example, texts in zip(batch, groups, strict=True):
            sqls = [extract_sql(t) for t in texts]
            if samples == 1:
                predictions.append(Prediction(example.id, example.db_id, sqls[0], texts[0]))
                continue
            paths = databases(example)
            results = [
                judge.run_prediction(paths, sql) if sql is not None and paths else None for sql in sqls
            ]
            chosen, votes = majority_vote(sqls, results)
            predictions.append(
                Prediction(
                    example.id,
                    example.db_id,
                    sqls[chosen],
                    texts[chosen],
                    votes=votes,
                    samples=samples,
                    extra={"distinct_sql": len({prepare(s, keep_distinct=True) for s in sqls if s})},
                )
            )
        log.info("predicted %d / %d examples", len(predictions), len(examples))
    return predictions
