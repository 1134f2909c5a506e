#!/usr/bin/env bash
# Continue shipped NIC models on the CPU in the background: one process and one thread per
# recipe, `nice`d, each pinned to its own core (taskset, round-robin), each from its shipped
# checkpoint (`nicspec train --init-weights`, so steps and wall time add up in the manifest),
# checkpointed every 100 steps and on SIGTERM, so a run survives interruptions and resumes
# across sessions. Start no more recipes than cores (measured on 2 cores, 2026-11-27: two pinned
# runs took 2.7 s a step each, three time-sharing the cores 4.4 s each, so pinning gains about 7%
# in all); to take turns, stop one (its state is saved) and start another.
#
#   scripts/continue_family_cpu.sh start  RUNS_DIR STEPS RECIPE [RECIPE ...]
#       start (or resume, from RUNS_DIR/<recipe>/last.pt) each recipe for STEPS more steps
#   scripts/continue_family_cpu.sh stop   RUNS_DIR     save every running recipe's state, stop
#   scripts/continue_family_cpu.sh status RUNS_DIR     running or not, last logged row
#
# Finished models land in RUNS_DIR/models/; judge one against the quality bars before shipping it:
#   nicspec models report --candidate RUNS_DIR/models/<recipe>.safetensors
# and ship it (it must continue the file now shipped), then re-measure the family:
#   nicspec models ship RUNS_DIR/models/<recipe>.safetensors && nicspec models report
# Needs NICSPEC_DATA_MIRROR or network access for the training images, like `nicspec train`.
set -uo pipefail
usage() { sed -n 10,13p "$0" >&2; exit 2; }
cmd=${1:-}
runs=${2:-}
[ -n "$cmd" ] && [ -n "$runs" ] || usage
nicspec=${NICSPEC:-nicspec}

case "$cmd" in
start)
  steps=${3:-}
  [[ "$steps" =~ ^[0-9]+$ ]] && [ "$steps" -gt 0 ] || { echo "STEPS must be a positive integer" >&2; exit 2; }
  shift 3
  [ $# -gt 0 ] || usage
  mkdir -p "$runs/models"
  # the CPUs this script may use (e.g. "0-1" or "4,6"), one per line
  mapfile -t cpus < <(awk '/^Cpus_allowed_list/ { n = split($2, parts, ",");
    for (i = 1; i <= n; i++) { m = split(parts[i], r, "-"); for (c = r[1]; c <= r[m]; c++) print c } }' \
    /proc/self/status 2> /dev/null)
  cores=${#cpus[@]}
  [ "$cores" -gt 0 ] || cores=$(nproc)
  running=0
  for pidfile in "$runs"/*.pid; do
    [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null && running=$((running + 1))
  done
  pin=()
  for r in "$@"; do
    pidfile="$runs/$r.pid"
    if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
      echo "$r: already running (pid $(cat "$pidfile"))"
      continue
    fi
    [ -f "data/models/$r.safetensors" ] || { echo "$r: no data/models/$r.safetensors to continue" >&2; exit 1; }
    if [ "$running" -ge "$cores" ]; then
      echo "warning: $((running + 1)) runs on $cores cores time-share them, at a higher cost per step" >&2
    fi
    [ "${#cpus[@]}" -gt 0 ] && command -v taskset > /dev/null && pin=(taskset -c "${cpus[$((running % cores))]}")
    running=$((running + 1))
    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 nohup "${pin[@]}" nice -n 10 "$nicspec" train --recipe "$r" \
      --init-weights "data/models/$r.safetensors" --steps "$steps" --checkpoint-every 100 \
      --runs-dir "$runs" --models-dir "$runs/models" --no-progress >> "$runs/$r.out" 2>&1 &
    echo $! > "$pidfile"
    echo "$r: started (pid $!, log $runs/$r/log.csv, output $runs/$r.out)"
  done
  ;;
stop)
  for pidfile in "$runs"/*.pid; do
    [ -f "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    if kill -TERM "$pid" 2>/dev/null; then
      echo "$(basename "$pidfile" .pid): stopping (its state is saved at the end of the step)"
    fi
  done
  ;;
status)
  for pidfile in "$runs"/*.pid; do
    [ -f "$pidfile" ] || continue
    r=$(basename "$pidfile" .pid)
    state="stopped"
    kill -0 "$(cat "$pidfile")" 2>/dev/null && state="running"
    [ -f "$runs/models/$r.safetensors" ] && [ "$state" = stopped ] && state="finished"
    echo "$r: $state; last row: $(tail -n 1 "$runs/$r/log.csv" 2>/dev/null || echo none)"
  done
  ;;
*) usage ;;
esac
