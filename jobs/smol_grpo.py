"""The embedded default: GRPO on SmolLM2-135M-Instruct, Spider dev accuracy before and after.

    python jobs/smol_grpo.py [--config jobs/smol_grpo.yaml] [--max-steps N] [--out RUN_DIR] [--resume] [key=value ...]
    ray job submit --working-dir . -- python jobs/smol_grpo.py --max-steps 2
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root, also under `ray job submit --working-dir .`

from rl_sql.cli import train_job  # noqa: E402

RECIPE = Path(__file__).with_suffix(".yaml")

if __name__ == "__main__":
    raise SystemExit(train_job(str(RECIPE), prog="jobs/smol_grpo.py"))
