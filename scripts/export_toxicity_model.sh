#!/usr/bin/env bash
# export_toxicity_model.sh: run ONCE (its outputs are committed) to export the alt-profanity-check
# classifier into data/toxicity/profanity_check.bin and write tests/fixtures/toxicity/reference.jsonl.
# Makes a throw-away virtual environment with the pinned packages (they need Python >= 3.11),
# fetches better-profanity's word list for the fixture strings, and removes everything after.
# Usage: bash scripts/export_toxicity_model.sh [PYTHON]   (default: first python3.13/3.12/3.11/python3 >= 3.11)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:-}
if [ -z "$PY" ]; then
  for c in python3.13 python3.12 python3.11 python3; do
    if command -v "$c" >/dev/null && "$c" -c 2>/dev/null 'import sys; sys.exit(sys.version_info < (3, 11))'; then PY=$c; break; fi
  done
fi
[ -n "$PY" ] || { echo "export_toxicity_model: needs Python >= 3.11 (scikit-learn 1.9.1)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$PY" -m venv "$tmp/venv" || { echo "export_toxicity_model: '$PY -m venv' failed (Debian: apt-get install python3-venv)" >&2; exit 1; }
"$tmp/venv/bin/pip" install --quiet alt-profanity-check==1.9.1 scikit-learn==1.9.1 joblib==1.6.0 numpy
"$tmp/venv/bin/pip" download --quiet --no-deps -d "$tmp/dl" better-profanity==0.7.0
(cd "$tmp" && "$tmp/venv/bin/python" -m zipfile -e dl/better_profanity-0.7.0-py3-none-any.whl bp)
mkdir -p data/toxicity tests/fixtures/toxicity
"$tmp/venv/bin/python" scripts/export_toxicity_model.py --out data/toxicity/profanity_check.bin \
  --fixture tests/fixtures/toxicity/reference.jsonl --wordlist "$tmp/bp/better_profanity/profanity_wordlist.txt"
