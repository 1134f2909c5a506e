#!/usr/bin/env bash
# Train a whole NIC family on one GPU, within a wall-clock budget.
#   phase A: the base model alone, from scratch;
#   phase B: every other recipe of the family at once, each initialised from the base.
# Usage: [NICSPEC_FAMILY=sh|elic] scripts/train_family_gpu.sh OUT_DIR [BASE_SECONDS] [FINETUNE_SECONDS]
#   NICSPEC_FAMILY=sh (default): the shipped scale-hyperprior family (base sh-mse-0.0067);
#   NICSPEC_FAMILY=elic: the ELIC recipes (base elic-mse-0.0067, then 0.0025, 0.018, 0.0483),
#   which this project has no models of (data/models/MODEL_CARD.md, "ELIC").
# Needs NICSPEC_DATA_MIRROR (training + validation images) and a CUDA device. At the end the
# models and logs are packed as OUT_DIR/part.NN (xz, 15 MiB parts: a lent machine returns at
# most 8 files of 16 MiB, 64 MiB in all; rejoin with `cat part.* | xz -d | tar x`). A paper-size
# ELIC checkpoint is 73 MB (57 MB as xz before training): from a lent machine bring back one at
# a time (NICSPEC_KEEP=NAME keeps only that model in the archive), or train on a GPU you keep.
#
# The shipped family (2026-11-26, one H200): phase A ran here with BASE_SECONDS=295; phase B was
# cut off by the lent machine's time limit and rerun as the same seven `nicspec train` commands
# with --time-budget 95, initialised from the shipped base checkpoint (data/models/).
set -uo pipefail
out=${1:?usage: train_family_gpu.sh OUT_DIR [BASE_SECONDS] [FINETUNE_SECONDS]}
base_s=${2:-295}
tune_s=${3:-95}
mkdir -p "$out/logs" "$out/models"
runs=${NICSPEC_RUNS:-runs-gpu}
family=$(python3 - "${NICSPEC_FAMILY:-sh}" <<'PY'
import sys
from nicspec_utils.errors import UsageError
from nicspec_utils.nic.train import family_recipes
try:
    bases, others = family_recipes(sys.argv[1])
except UsageError as exc:
    sys.exit(f"train_family_gpu.sh: error: NICSPEC_FAMILY: {exc}")
print(" ".join(bases), "|", " ".join(others))
PY
) || exit 2
base=${family%% |*}
others=${family#*| }
[ -n "$base" ] && [ "${base// /}" = "$base" ] || { echo "need exactly one base recipe, got '$base'"; exit 1; }
[ -n "$others" ] || { echo "no recipes found"; exit 1; }
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$out/logs/gpu.txt"

echo "== preflight: 3 steps of every recipe on the GPU"
python3 -m nicspec_utils.cli train --recipe $base --device cuda --steps 3 --runs-dir /tmp/preflight \
    --models-dir /tmp/preflight-models --no-progress > "$out/logs/preflight-$base.log" 2>&1 \
    || { tail -30 "$out/logs/preflight-$base.log"; exit 1; }
pids=()
for r in $others; do
  python3 -m nicspec_utils.cli train --recipe "$r" --device cuda --steps 3 --runs-dir /tmp/preflight \
      --models-dir /tmp/preflight-models --no-progress > "$out/logs/preflight-$r.log" 2>&1 &
  pids+=($!)
done
fail=0
for p in "${pids[@]}"; do wait "$p" || fail=1; done
if [ $fail = 1 ]; then tail -n 25 "$out"/logs/preflight-*.log; exit 1; fi
echo "preflight ok"

echo "== phase A: $base for ${base_s}s"
python3 -m nicspec_utils.cli train --recipe $base --device cuda --time-budget "$base_s" --steps 1000000 \
    --runs-dir "$runs" --models-dir "$out/models" --no-progress > "$out/logs/$base.log" 2>&1 \
    || { tail -30 "$out/logs/$base.log"; exit 1; }
tail -n 2 "$runs/$base/log.csv"

echo "== phase B: $others for ${tune_s}s each, concurrently"
pids=()
for r in $others; do
  python3 -m nicspec_utils.cli train --recipe "$r" --device cuda --time-budget "$tune_s" --steps 1000000 \
      --runs-dir "$runs" --models-dir "$out/models" --no-progress > "$out/logs/$r.log" 2>&1 &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || echo "a phase-B run failed: see logs"; done
for r in $base $others; do
  cp "$runs/$r/log.csv" "$out/logs/$r.csv" 2>/dev/null
  echo "$r: $(tail -n 1 "$runs/$r/log.csv" 2>/dev/null)"
done
ls -la "$out/models"
if [ -n "${NICSPEC_KEEP:-}" ]; then  # only that model's checkpoint goes into the archive
  find "$out/models" -type f ! -name "$NICSPEC_KEEP.safetensors" -delete
fi
tar cf - -C "$out" models logs | xz -T0 -3 | split -b 15M -d - "$out/part." \
  && rm -rf "$out/models" "$out/logs"
ls -la "$out"
