"""Ray Tune sweep over the reward weights (syntax, execution, semantic) of a GRPO recipe.

Each trial is a short GRPO run from the same SFT policy (trained once, cached), compared on
held-out execution accuracy; ASHA stops the laggards. Writes results.csv, results.md,
accuracy_vs_weights.png and best.yaml (the recipe with the best weights) to --out.

    python jobs/tune_reward_weights.py [--config jobs/tiny_grpo.yaml] [--num-samples 6] [--max-steps 10]
        [--out runs/tune] [--search dirichlet|grid] [--tune-lr] [--tune-beta] [--resume] [key=value ...]
    ray start --head && python jobs/tune_reward_weights.py            # one box (joins the running head)
    ray job submit --working-dir . -- python jobs/tune_reward_weights.py --out /shared/sweep   # a cluster
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root, also under `ray job submit --working-dir .`

from rl_sql.cli import cmd_tune, run_command  # noqa: E402

RECIPE = Path(__file__).with_name("tiny_grpo.yaml")

if __name__ == "__main__":
    raise SystemExit(run_command(cmd_tune, sys.argv[1:], prog="jobs/tune_reward_weights.py", default_config=str(RECIPE)))
