#!/usr/bin/env bash
# One multi-GPU box: start a Ray head that owns every GPU and CPU, then submit a job to it.
#   bash cluster/single_box.sh                      # 8B recipe
#   bash cluster/single_box.sh jobs/tiny_grpo.py    # the CPU default
# Stop it afterwards with `ray stop` (this stops every Ray process of this user on the box).
# Ray >= 2.59 turns token authentication on for local clusters: the head and `ray job submit` on this
# box share ~/.ray/auth_token; elsewhere set RAY_AUTH_TOKEN (or RAY_AUTH_TOKEN_PATH) to that token.
set -euo pipefail
cd "$(dirname "$0")/.."
JOB=${1:-jobs/llama8b_grpo.py}
shift || true
NUM_GPUS=${NUM_GPUS:-$(nvidia-smi -L 2>/dev/null | wc -l)}
NUM_CPUS=${NUM_CPUS:-$(nproc)}
if ! ray status >/dev/null 2>&1; then
  ray start --head --num-cpus "$NUM_CPUS" --num-gpus "$NUM_GPUS" --dashboard-host 127.0.0.1 --metrics-export-port 8080
fi
echo "dashboard: http://127.0.0.1:8265   (ray list actors: rollout-*, reward-*, learner-*)"
exec ray job submit --address http://127.0.0.1:8265 --working-dir . -- python "$JOB" "$@"
