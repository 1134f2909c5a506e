#!/usr/bin/env bash
# Train chapter 6's pruning ladder (recipes ladder-pruned*-mse-0.0067 in data/models/recipes.yaml):
# the shipped base sh-mse-0.0067 pruned to each sparsity and fine-tuned briefly, one recipe after
# the other, each into data/models/ladder/. Resumable: a killed run continues from
# RUNS_DIR/<recipe>/last.pt when started again; a recipe whose checkpoint exists is skipped.
# Usage: scripts/train_pruning_ladder.sh [RUNS_DIR] [DEVICE] [RECIPE ...]
#   (defaults: runs/ladder, cpu, every ladder recipe). Needs NICSPEC_DATA_MIRROR (training data).
# On the 2-core CPU: OMP_NUM_THREADS=1 nice -n 10 scripts/train_pruning_ladder.sh &
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-runs/ladder}
device=${2:-cpu}
shift $(( $# < 2 ? $# : 2 ))
py=${PYTHON:-.venv/bin/python}
recipes=("$@")
if [ ${#recipes[@]} -eq 0 ]; then
  mapfile -t recipes < <("$py" -c "from nicspec_utils.nic.train import load_recipes
print('\n'.join(n for n in load_recipes() if n.startswith('ladder-')))")
fi
[ ${#recipes[@]} -gt 0 ] || { echo "no ladder recipes found" >&2; exit 1; }
out=data/models/ladder
mkdir -p "$out" "$out/logs"
for r in "${recipes[@]}"; do
  if [ -f "$out/$r.safetensors" ]; then echo "$r: done"; continue; fi
  echo "$r: training ($(date +%T))"
  "$py" -m nicspec_utils.cli train --recipe "$r" --device "$device" \
      --init-weights data/models/sh-mse-0.0067.safetensors \
      --runs-dir "$runs" --models-dir "$out" --no-progress
  cp "$runs/$r/log.csv" "$out/logs/$r.csv"
done
echo "ladder complete ($(date +%T))"
