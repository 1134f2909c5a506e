#!/usr/bin/env bash
# The paper profile's publication run (issue #19), resumable: rerun it after any interruption
# and it goes on from the results store. In order:
#   1. the quick profile's chapters into the same results folder (the summary page puts their
#      verdicts beside the paper's, and the bundle carries that ledger);
#   2. the paper profile's chapters (about 8 hours on 2 cores, scripts/project_paper.py);
#   3. `nicspec results bundle --profile paper` into data/results/paper/;
#   4. `nicspec results verify --sample 5` on the new bundle.
# Usage: scripts/run_paper_profile.sh [RESULTS]   (default: $NICSPEC_RESULTS, else results/)
# Runs under nice 19 with one BLAS thread; the log of each step goes to RESULTS/paper-run.log.
# Needs the data mirror (NICSPEC_DATA_MIRROR, else ../shared/data beside the clone).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
results=${1:-${NICSPEC_RESULTS:-$PWD/results}}
mkdir -p "$results"
export NICSPEC_RESULTS=$(cd "$results" && pwd)
if [ -z "${NICSPEC_DATA_MIRROR:-}" ] && [ -d ../shared/data ]; then
  export NICSPEC_DATA_MIRROR=$(cd ../shared/data && pwd)
fi
if [ -z "${NICSPEC_DATA_MIRROR:-}" ]; then
  echo "run_paper_profile: no data mirror: set NICSPEC_DATA_MIRROR (the paper profile needs CLIC and ImageNet)" >&2
  exit 2
fi
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} MKL_NUM_THREADS=${MKL_NUM_THREADS:-1}
nicspec=${NICSPEC_BIN:-.venv/bin/nicspec}
log=$NICSPEC_RESULTS/paper-run.log

step() {
  local name=$1
  shift
  local start=$SECONDS
  echo "$(date -u +%FT%TZ) start $name ($(git log --oneline -1 | cut -c1-60))" >> "$log"
  nice -n 19 "$@"
  echo "$(date -u +%FT%TZ) done $name in $((SECONDS - start)) s" >> "$log"
}

step quick "$nicspec" book --profile quick --no-html
step paper "$nicspec" book --profile paper --no-html
step bundle "$nicspec" results bundle --profile paper
step verify "$nicspec" results verify --bundle data/results/paper --sample 5
echo "run_paper_profile: data/results/paper is ready; commit it with the README's wall times ($log)"
