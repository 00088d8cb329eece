#!/usr/bin/env bash
# GPU readiness: builds flotilla with LibTorch (scripts/setup-libtorch.sh), then on the
# first CUDA GPU measures the pool on W1's workload with 1, 8, 32 and 64 clients per
# batch, and W1 whole, and prints the figures (one JSON object per measurement: wall
# seconds, images or rounds done, peak memory, accuracy).
#
#   scripts/gpu-check.sh
#   TORCH_VENV=/opt/torch scripts/gpu-check.sh
set -euo pipefail

cd "$(dirname "$0")/.."
scripts/setup-libtorch.sh
bin=target/release/flotilla
scenario=scenarios/w1.ron

if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
fi

cuda='"pool.backend=Tch","pool.device=Cuda"'
echo "pool, W1's clients, 3 rounds of 10 (images/s = work / wall_seconds):"
for batch in 1 8 32 64; do
    printf 'batch %2d: ' "$batch"
    "$bin" bench --scenario "$scenario" \
        --item "{\"Pool\":{\"rounds\":3,\"set\":[$cuda,\"pool.batch_clients=$batch\"]}}"
done
echo "W1 whole on CUDA:"
"$bin" bench --scenario "$scenario" --item "{\"Run\":{\"set\":[$cuda]}}"
