#!/usr/bin/env bash
# The paper profile's publication run (issue #19), chapter by chapter and resumable. The run
# needs about 8 hours of 2 cores (scripts/project_paper.py), more than one machine may be lent
# for, so data/results/paper is assembled one finished chapter at a time: after each chapter
# the bundle is rewritten with it (the chapters it already holds are kept, `nicspec results
# bundle` merges), and a rerun on any machine goes on with the chapters it still lacks. The
# book switches to the paper profile once the bundle holds every chapter ("complete").
#   1. the quick profile's chapters, only when the summary page (07_claims) is to run: it puts
#      their verdicts beside the paper's, and the bundle carries that ledger;
#   2. each chapter of the paper profile, then `nicspec results bundle --profile paper`;
#   3. `nicspec results verify --sample 5` on the bundle.
# Usage: scripts/run_paper_profile.sh [RESULTS]   (default: $NICSPEC_RESULTS, else results/)
#   CHAPTERS=a,b     the chapters to run (default: those data/results/paper lacks, book order)
#   MAP_FACTOR=F     the bundle's map factor (default: nicspec results bundle's choice)
#   SET="a=1 b=2"    run the chapters with these parameters replaced (nicspec book --set): a
#                    part of a chapter too long for one machine's loan, e.g. CHAPTERS=03b_fourier_heatmaps
#                    SET=draws=1 (its first sign draw; the full run later reuses it). The bundle
#                    records the chapter as partial and still lists it as missing
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
python=${NICSPEC_PYTHON:-.venv/bin/python}
log=$NICSPEC_RESULTS/paper-run.log

chapters=${CHAPTERS:-$("$python" -c '
import json, pathlib
from nicspec_utils import bundle
path = pathlib.Path("data/results/paper/manifest.json")
held = json.loads(path.read_text()).get("chapters", {}) if path.is_file() else {}
print(",".join(bundle.missing_chapters(held)))')}
if [ -z "$chapters" ]; then
  echo "run_paper_profile: data/results/paper already holds every chapter; CHAPTERS=a,b reruns some"
  exit 0
fi

step() {
  local name=$1
  shift
  local start=$SECONDS
  echo "$(date -u +%FT%TZ) start $name ($(git log --oneline -1 | cut -c1-60))" >> "$log"
  nice -n 19 "$@"
  echo "$(date -u +%FT%TZ) done $name in $((SECONDS - start)) s" >> "$log"
}

case ",$chapters," in
  *,07_claims,*) step quick "$nicspec" book --profile quick --no-html ;;
esac
sets=()
for item in ${SET:-}; do
  sets+=(--set "$item")
done
for chapter in ${chapters//,/ }; do
  step "paper:$chapter" "$nicspec" book --profile paper --chapters "$chapter" --no-html "${sets[@]}"
  step "bundle:$chapter" "$nicspec" results bundle --profile paper ${MAP_FACTOR:+--map-factor "$MAP_FACTOR"}
done
step verify "$nicspec" results verify --bundle data/results/paper --sample 5
echo "run_paper_profile: data/results/paper holds $chapters now; commit it with the README's wall times ($log)"
