#!/usr/bin/env bash
# Continue training the whole shipped NIC family on one GPU, every model at once, each from its
# own shipped checkpoint (`nicspec train --init-weights`): steps and wall time add up in the
# manifest, so a lent GPU's few minutes accumulate across sessions instead of starting over.
# Usage: [NICSPEC_FAMILY=sh|elic] scripts/continue_family_gpu.sh OUT_DIR SECONDS [RECIPE=START_CHECKPOINT ...]
#   RECIPE=START maps a recipe to the shipped file it starts from when the names differ (a
#   recipe whose lambda changed); every other recipe continues data/models/<recipe>.safetensors.
#   NICSPEC_FAMILY=sh (default): every shipped recipe; NICSPEC_FAMILY=elic: the ELIC recipes,
#   none of which is shipped: each continues its RECIPE=START file (a checkpoint that an
#   earlier `NICSPEC_FAMILY=elic scripts/train_family_gpu.sh` made), and a recipe with no
#   start file is left out with a note.
# Needs NICSPEC_DATA_MIRROR (training + validation images) and a CUDA device (NICSPEC_DEVICE=cpu
# runs the same on the CPU, for checking the script).
set -uo pipefail
out=${1:?usage: continue_family_gpu.sh OUT_DIR SECONDS [RECIPE=START ...]}
seconds=${2:?usage: continue_family_gpu.sh OUT_DIR SECONDS [RECIPE=START ...]}
shift 2
declare -A start
for pair in "$@"; do start[${pair%%=*}]=${pair#*=}; done
mkdir -p "$out/logs" "$out/models"
runs=${NICSPEC_RUNS:-runs-gpu}
members=$(python3 - "${NICSPEC_FAMILY:-sh}" <<'PY'
import sys
from nicspec_utils.errors import UsageError
from nicspec_utils.nic.train import family_recipes
try:
    groups = family_recipes(sys.argv[1])
except UsageError as exc:
    sys.exit(f"continue_family_gpu.sh: error: NICSPEC_FAMILY: {exc}")
print(" ".join(n for group in groups for n in group))
PY
) || exit 2
init_of() { echo "${start[$1]:-data/models/$1.safetensors}"; }
recipes=""
for r in $members; do
  if [ -f "$(init_of "$r")" ]; then recipes="$recipes $r"; else echo "$r: no $(init_of "$r") to continue: left out"; fi
done
recipes=${recipes# }
[ -n "$recipes" ] || { echo "no recipes with a checkpoint to continue"; exit 1; }
{ nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"; } | tee "$out/logs/gpu.txt"

run_all() {  # run_all LABEL RUNS_DIR MODELS_DIR EXTRA...: every recipe at once; 0 when all pass
  local label=$1 rdir=$2 mdir=$3 pids=() fail=0 r
  shift 3
  for r in $recipes; do
    python3 -m nicspec_utils.cli train --recipe "$r" --device "${NICSPEC_DEVICE:-cuda}" --init-weights "$(init_of "$r")" \
        --runs-dir "$rdir" --models-dir "$mdir" --no-progress "$@" > "$out/logs/$label-$r.log" 2>&1 &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || fail=1; done
  return $fail
}

if [ "${NICSPEC_PREFLIGHT:-1}" = 1 ]; then  # NICSPEC_PREFLIGHT=0 skips it (a rerun)
  echo "== preflight: 2 steps of every recipe"
  run_all preflight /tmp/preflight-runs /tmp/preflight-models --steps 2 \
    || { tail -n 5 "$out"/logs/preflight-*.log; exit 1; }
  echo "preflight ok"
fi

echo "== training $recipes for ${seconds}s each, concurrently"
run_all train "$runs" "$out/models" --steps 1000000 --time-budget "$seconds" \
  || echo "a run failed: see $out/logs"
for r in $recipes; do
  cp "$runs/$r/log.csv" "$out/logs/$r.csv" 2>/dev/null
  echo "$r: $(tail -n 1 "$runs/$r/log.csv" 2>/dev/null)"
done
ls -la "$out/models"
# The lent device returns at most 8 files of at most 16 MiB, 64 MiB in all: one xz archive split
# into 15 MiB parts (rejoin with `cat part.* | xz -d | tar x`). A 49 MB tar came back as nothing,
# twice. One paper-size ELIC checkpoint alone is 73 MB (57 MB as xz before training): at most
# one comes back per loan, and only if its archive stays under 64 MiB.
tar cf - -C "$out" models logs | xz -T0 -3 | split -b 15M -d - "$out/part." \
  && rm -rf "$out/models" "$out/logs"
ls -la "$out"
