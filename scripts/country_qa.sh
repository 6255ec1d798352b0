#!/usr/bin/env bash
# country_qa.sh MODEL OUT [rank options...]: the paper's country-QA experiment on one model,
# resumable (head representations are cached in OUT/reps_train.safetensors, every finished eval
# configuration in OUT/eval/runs/): rank all heads for the concept "country" on the train split,
# print what the top 8 SOMP heads write over the whole vocabulary (Table 1 form), then invert the
# top 8/16/32 heads (alpha = -1) on the test split against 10 random draws and the Logit-Lens
# heads. Extra arguments go to `rank` and `heads` (e.g. --center --normalize-atoms).
# Environment: HP_EVAL_LIMIT (test questions, default 128; 0 = all), HP_MAX_NEW (answer budget,
# default 16 tokens), HP_RANDOM (random draws, default 10), HP_TOPS (default 8,16,32), HP_DATA
# (default results/data/qa), HP_EVAL_ARGS (more eval options, e.g. --no-chat for a base model,
# which rank then needs among the extra arguments too).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 2 ]; then
    echo "usage: scripts/country_qa.sh MODEL OUT [rank options...]" >&2
    exit 2
fi
MODEL=$1 OUT=$2
shift 2
DATA=${HP_DATA:-results/data/qa}
LIMIT=${HP_EVAL_LIMIT:-128}
MAXNEW=${HP_MAX_NEW:-16}
NRAND=${HP_RANDOM:-10}
TOPS=${HP_TOPS:-8,16,32}
BIN=${HP_BIN:-./headpursuit}
[ -f "$DATA/train.jsonl" ] || python3 scripts/build_qa.py --out-dir "$DATA"
mkdir -p "$OUT"
echo "== rank: $MODEL ($*) -> $OUT/ranking.json"
"$BIN" rank "$MODEL" --data "$DATA/train.jsonl" --concept "$DATA/countries.txt" -k 50 "$@" \
    --reps "$OUT/reps_train.safetensors" --out "$OUT/ranking.json"
top=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(",".join(f"{h[0]}.{h[1]}" for h in r["somp_order"][:8]))' "$OUT/ranking.json")
echo "== heads: what the top SOMP heads ($top) write over the whole vocabulary"
"$BIN" heads "$MODEL" --data "$DATA/train.jsonl" --vocab full -k 50 --heads "$top" "$@" \
    --reps "$OUT/reps_train.safetensors" --out "$OUT/heads_top8.json" | tee "$OUT/heads_top8.txt"
echo "== eval: invert the top heads (test split, $LIMIT questions, $MAXNEW new tokens)"
"$BIN" eval "$MODEL" --task qa --data "$DATA/test.jsonl" --edit "$OUT/ranking.json" \
    --top "$TOPS" --alpha -1 --random "$NRAND" --seed 1 --limit "$LIMIT" --max-new "$MAXNEW" \
    --out-dir "$OUT/eval" ${HP_EVAL_ARGS:-}
