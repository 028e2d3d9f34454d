"""The 8B recipe (Llama-3.1-8B QLoRA r 256) on a GPU cluster.

    python jobs/llama8b_grpo.py [--config jobs/llama8b_grpo.yaml] [--max-steps N] [--out RUN_DIR] [--resume] [key=value ...]
    ray job submit --working-dir . -- python jobs/llama8b_grpo.py
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root, also under `ray job submit --working-dir .`

from rl_sql.cli import train_job  # noqa: E402

RECIPE = Path(__file__).with_suffix(".yaml")

if __name__ == "__main__":
    raise SystemExit(train_job(str(RECIPE), prog="jobs/llama8b_grpo.py"))
