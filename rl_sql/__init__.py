"""rl_sql: GRPO for text-to-SQL on Ray, vLLM and DeepSpeed."""
__version__ = "0.1.0"

# verifiers resolves a taskset id to a top-level module and takes the Taskset subclass that
# module exports in __all__: ``vf-eval rl_sql`` finds rl_sql.verifiers_env.SqlTaskset here
# (loaded on first access, so ``import rl_sql`` stays light).
__all__ = ["SqlTaskset"]


def __getattr__(name: str):
    if name == "SqlTaskset":
        from rl_sql.verifiers_env import SqlTaskset

        return SqlTaskset
    raise AttributeError(f"module 'rl_sql' has no attribute {name!r}")
