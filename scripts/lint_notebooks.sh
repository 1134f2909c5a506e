#!/usr/bin/env bash
# Lint the chapters' code cells: each MyST text notebook (notebooks/NN_*.md) is paired to an
# .ipynb in a temporary folder by jupytext, then `ruff check` and `ruff format --check` read it
# (ruff lints the code cells of a notebook; markdown cells are prose, not code).
# Usage: scripts/lint_notebooks.sh [BIN]   (BIN: the folder with jupytext and ruff; default .venv/bin)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bin=${1:-.venv/bin}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for md in notebooks/[0-9][0-9]*_*.md; do
  "$bin/jupytext" --quiet --to ipynb -o "$tmp/$(basename "${md%.md}").ipynb" "$md"
done
"$bin/ruff" check "$tmp"
"$bin/ruff" format --check "$tmp"
