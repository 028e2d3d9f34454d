"""rl_sql's text-to-SQL task for verifiers 0.4 (``verifiers.v1``).

The taskset yields one ``SqlTask`` per example of the configured data source; each task
is scored by three ``@vf.reward`` methods wrapping rl_sql's own rewards (syntax,
execution, semantic), weighted like the GRPO trainer's reward (``RewardConfig``
weights, applied through the task config's ``rewards`` entries). So an evaluation with
``vf-eval`` and a training run score a completion the same way.

Evaluate an OpenAI-compatible server (e.g. ``vllm serve`` or ``rl-sql`` serving a policy)::

    vf-eval rl_sql -m MODEL --client.base-url http://127.0.0.1:8000/v1 \\
        --env.agent.harness.id null --env.agent.runtime.type subprocess \\
        --env.taskset.data.source spider-embedded --env.taskset.split heldout -r 4

From Python: ``load_environment(split="heldout", data={"source": "spider-embedded"})`` returns the
``vf.Env``; ``load_taskset(...)`` the taskset; ``score_completions(tasks, completions)``
scores offline (no model server), which is what the training engine can call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from typing import Any, Literal

import verifiers.v1 as vf
from pydantic import Field

from rl_sql.config import DataConfig, RewardConfig
from rl_sql.data import SYSTEM_PROMPT, SqlExample, load_examples, load_spider_dev, split_examples
from rl_sql.data.prompts import user_message
from rl_sql.rewards import BaseReward, ExecutionReward, SemanticReward, SyntaxReward

TASKSET_ID = "rl_sql"
"""verifiers imports a taskset id as a top-level module: ``rl_sql`` exports ``SqlTaskset`` lazily."""


class SqlTaskData(vf.TaskData):
    """One text-to-SQL question: the prompt, the gold SQL and where to execute it."""

    answer: str
    """Gold SQL."""
    context: str
    """CREATE TABLE statements of the schema."""
    db_paths: tuple[str, ...] = ()
    """Real SQLite files; empty = the execution reward synthesizes databases from context + answer."""
    db_id: str | None = None


class SqlTaskConfig(vf.TaskConfig):
    """Run-time scoring knobs (``--env.taskset.task.reward.*``): rl_sql's RewardConfig."""

    reward: RewardConfig = Field(default_factory=RewardConfig)


class _Rewards:
    """The reward objects for one RewardConfig, shared by every task of a process."""

    def __init__(self, reward_cfg: RewardConfig):
        self.syntax = SyntaxReward()
        self.execution = ExecutionReward(reward_cfg)
        self.semantic = SemanticReward()


_REWARDS: dict[str, _Rewards] = {}


def _rewards_for(reward_cfg: RewardConfig) -> _Rewards:
    """One set of reward objects per distinct RewardConfig (its sandbox and gold cache are reused)."""
    key = reward_cfg.model_dump_json()
    if key not in _REWARDS:
        _REWARDS[key] = _Rewards(reward_cfg)
    return _REWARDS[key]


class SqlTask(vf.Task[SqlTaskData, vf.State, SqlTaskConfig]):
    """Scores the final reply with rl_sql's rewards. The decorator weights are the RewardConfig
    defaults; ``task_config_for`` sets the configured weights."""

    @property
    def rewards(self) -> _Rewards:
        return _rewards_for(self.config.reward)

    def _score(self, reward: BaseReward, trace: vf.Trace) -> float:
        """``reward`` on the trace's final reply; its details go to ``trace.info["rl_sql"][reward.name]``."""
        data = self.data
        result = reward.compute(
            data.prompt_text,
            trace.last_reply,
            data.answer,
            context=data.context,
            db_paths=data.db_paths,
            example_id=data.id,
        )
        trace.info.setdefault("rl_sql", {})[reward.name] = result.details
        return result.score

    async def validate(self, runtime: Any = None) -> bool:
        """Model-free ground-truth check (``vf-validate``): the gold SQL earns the top execution score."""
        return self._score(self.rewards.execution, make_trace(self, self.data.answer)) == ExecutionReward.max_score

    @vf.reward(weight=0.2)
    async def syntax(self, trace: vf.Trace) -> float:
        """SyntaxReward: one parseable SELECT/WITH query (1.0) ... no SQL (-0.5)."""
        return self._score(self.rewards.syntax, trace)

    @vf.reward(weight=0.6)
    async def execution(self, trace: vf.Trace) -> float:
        """ExecutionReward: same rows as the gold on every database (1.0) ... SQL error (-0.8)."""
        # Runs in the event loop's thread: the reward's sandbox process and caches are not
        # thread-safe, and a query is bounded by reward.timeout_s.
        return self._score(self.rewards.execution, trace)

    @vf.reward(weight=0.2)
    async def semantic(self, trace: vf.Trace) -> float:
        """SemanticReward: 0.8 x token Jaccard with the gold after normalization; -0.2 without SQL."""
        return self._score(self.rewards.semantic, trace)


def task_config_for(reward_cfg: RewardConfig, base: SqlTaskConfig | None = None) -> SqlTaskConfig:
    """A task config carrying ``reward_cfg`` and its weights for the three reward methods."""
    base = base if base is not None else SqlTaskConfig()
    weights = {
        "syntax": reward_cfg.syntax_weight,
        "execution": reward_cfg.execution_weight,
        "semantic": reward_cfg.semantic_weight,
    }
    rewards = {name: vf.RewardFunctionConfig(weight=w) for name, w in weights.items()} | dict(base.rewards)
    return base.model_copy(update={"reward": reward_cfg, "rewards": rewards})


def task_from_example(example: SqlExample, config: SqlTaskConfig | None = None) -> SqlTask:
    """The verifiers task for one rl_sql example (chat prompt: system prompt + schema and question)."""
    data = SqlTaskData(
        id=example.id,
        name=example.id,
        prompt=user_message(example),
        system_prompt=SYSTEM_PROMPT,
        answer=example.answer,
        context=example.context,
        db_paths=tuple(example.db_paths),
        db_id=example.db_id,
    )
    return SqlTask(data, task_config_for((config or SqlTaskConfig()).reward, config))


class SqlTasksetConfig(vf.TasksetConfig):
    """Which examples to load (``--env.taskset.*``): rl_sql's own DataConfig, and which side of its split."""

    task: SqlTaskConfig = SqlTaskConfig()
    data: DataConfig = Field(default_factory=lambda: DataConfig(source="spider-embedded"))
    """Same fields as the training config's ``data`` section (``--env.taskset.data.source spider``, ...)."""
    split: Literal["all", "train", "heldout", "dev"] = "heldout"
    """``train``/``heldout``: rl_sql's leak-free split (``data.heldout_fraction``, ``data.seed``);
    ``dev``: Spider dev as ``rl-sql eval`` reads it (``RL_SQL_SPIDER_DIR`` when set, else the copy
    embedded in the package); ``all``: every example."""


class SqlTaskset(vf.Taskset[SqlTask, SqlTasksetConfig]):
    """rl_sql examples as verifiers tasks."""

    def examples(self) -> list[SqlExample]:
        data_cfg, split = self.config.data, self.config.split
        if split == "dev":
            from rl_sql.eval.run import spider_dev_dir

            return load_spider_dev(spider_dev_dir(None)[0], data_cfg.context_scope)
        examples = load_examples(data_cfg)
        if split == "all":
            return examples
        train, heldout = split_examples(examples, data_cfg.heldout_fraction, data_cfg.seed)
        return train if split == "train" else heldout

    def load(self) -> Iterator[SqlTask]:
        task_cfg = task_config_for(self.config.task.reward, self.config.task)
        for example in self.examples():
            yield task_from_example(example, task_cfg)


def load_taskset(**config: Any) -> SqlTaskset:
    """``SqlTaskset(SqlTasksetConfig(**config))``, e.g. ``load_taskset(split="all", data={"max_examples": 50})``."""
    return SqlTaskset(SqlTasksetConfig(id=TASKSET_ID, **config))


def load_environment(**taskset_config: Any) -> vf.Env:
    """The verifiers environment (single agent, this taskset) — what ``vf-eval rl_sql`` runs."""
    env_config = vf.resolve_env_config({"taskset": {"id": TASKSET_ID, **taskset_config}})
    return vf.load_environment(env_config)


def make_trace(task: SqlTask, completion: str) -> vf.Trace:
    """A trace holding the task prompt and ``completion`` as the model's reply (for offline scoring)."""
    messages: list[vf.Message] = []
    if task.data.system_prompt:
        messages.append(vf.SystemMessage(content=task.data.system_prompt))
    messages.append(vf.UserMessage(content=task.data.prompt_text))
    messages.append(vf.AssistantMessage(content=completion))
    nodes = [
        vf.MessageNode(parent=i - 1 if i else None, message=m, sampled=isinstance(m, vf.AssistantMessage))
        for i, m in enumerate(messages)
    ]
    return vf.Trace(
        task=vf.TraceTask(type=type(task).__name__, data=task.data, key=task.key, hash=task.hash),
        agent=vf.AgentInfo(config=vf.AgentConfig(), name="offline", trainable=False),
        nodes=nodes,
    )


async def score_completion(task: SqlTask, completion: str) -> vf.Trace:
    """Score ``completion`` with the task's rewards; ``trace.reward`` is the weighted sum and
    ``trace.rewards`` the components."""
    trace = make_trace(task, completion)
    await task.score(trace)
    return trace


def score_completions(tasks: Sequence[SqlTask], completions: Sequence[str]) -> list[vf.Trace]:
    """Score ``completions[i]`` for ``tasks[i]`` without a model server (blocking; for the engine)."""
    if len(tasks) != len(completions):
        raise ValueError(f"{len(tasks)} tasks but {len(completions)} completions")

    async def run() -> list[vf.Trace]:
        return list(await asyncio.gather(*(score_completion(t, c) for t, c in zip(tasks, completions))))

    return asyncio.run(run())


__all__ = [
    "SqlTask",
    "SqlTaskData",
    "SqlTaskConfig",
    "SqlTaskset",
    "SqlTasksetConfig",
    "load_environment",
    "load_taskset",
    "make_trace",
    "score_completion",
    "score_completions",
    "task_from_example",
]
