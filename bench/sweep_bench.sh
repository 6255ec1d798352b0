#!/usr/bin/env bash
# The edit sweep's wall time on the CPU, what the speed work of the CPU path is for: one
# SmolLM2 country-QA sweep (`eval --task qa`: unedited, top-k SOMP, top-k Logit-Lens, random
# heads) run three ways on the same questions and ranking, one after the other:
#   baseline   --weights-f32 --no-prefix-reuse  (weights dequantised to float32, every prefill
#              recomputed: how eval ran before the weights were kept in their block types and
#              before kept prefills)
#   kept       GGUF block types kept, --no-prefix-reuse
#   default    block types kept + kept unedited prefills (what eval and run do)
# and checks that kept prefills change nothing: results of default == kept (bit for bit); the
# kept-weight answers against float32 are compared too (a different product, so a few may
# differ). Prints a Markdown table; writes only under $OUT (default a temporary folder).
#
#   bash bench/sweep_bench.sh [RANKING.json]   (default results/smollm2/rank/country.json, made
#                                               by `./headpursuit run experiments/smollm2-country-qa.json`)
#   QUESTIONS=32 TOPS=8,16 RANDOM=3 MAX_NEW=16  the sweep's size
#   MODEL=models/...gguf  another model (with its ranking as the argument)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
MODEL=${MODEL:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
RANK=${1:-results/smollm2/rank/country.json}
DATA=results/data/qa/test.jsonl
for f in "$MODEL" "$RANK" "$DATA" ./headpursuit; do
    [[ -e "$f" ]] || { echo "sweep_bench: $f not found (fetch smollm2, build, run the SmolLM2 experiment)" >&2; exit 1; }
done
OUT=${OUT:-$(mktemp -d)}
Q=${QUESTIONS:-32} TOPS=${TOPS:-8,16} R=${RANDOM_DRAWS:-${RANDOM_N:-3}} MN=${MAX_NEW:-16}
declare -A T
for mode in baseline kept default; do
    args=()
    [[ $mode == baseline ]] && args=(--weights-f32 --no-prefix-reuse)
    [[ $mode == kept ]] && args=(--no-prefix-reuse)
    rm -rf "$OUT/$mode"
    t0=$(date +%s.%N)
    ./headpursuit eval "$MODEL" "${args[@]}" --task qa --data "$DATA" --edit "$RANK" --top "$TOPS" --random "$R" \
        --seed 1 --limit "$Q" --max-new "$MN" --out-dir "$OUT/$mode" --device cpu --quiet >/dev/null
    T[$mode]=$(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$t0" "$(date +%s.%N)")
done
python3 - "$OUT" "${T[baseline]}" "${T[kept]}" "${T[default]}" "$Q" "$TOPS" "$R" "$MN" <<'PY'
import json, os, platform, sys, time
out, tb, tk, td = sys.argv[1], *map(float, sys.argv[2:5])
q, tops, r, mn = sys.argv[5:9]
ev = {m: json.load(open(os.path.join(out, m, "eval.json"))) for m in ("baseline", "kept", "default")}
same = ev["kept"]["results"] == ev["default"]["results"] and ev["kept"]["unedited_answers"] == ev["default"]["unedited_answers"]
ans = lambda m: [a["answer"] for a in ev[m]["unedited_answers"]]
diff = sum(a != b for a, b in zip(ans("baseline"), ans("kept")))
n_conf = 1 + len(ev["default"]["results"])
print(f"**Edit-sweep wall time, {time.strftime('%Y-%m-%d')}**, {os.path.basename(ev['default']['model'])}, {q} questions x "
      f"{n_conf} configurations (k = {tops}, {r} random draws), {mn} new tokens, load average before/after in "
      f"`uptime`; one run each, in this order.")
print()
print("| sweep | seconds | speed-up vs baseline |")
print("|---|---:|---:|")
print(f"| baseline: --weights-f32 --no-prefix-reuse | {tb:.1f} | 1.00 |")
print(f"| GGUF block types kept, no kept prefills | {tk:.1f} | {tb / tk:.2f} |")
print(f"| kept block types + kept prefills (default) | {td:.1f} | {tb / td:.2f} |")
print()
print(f"kept prefills change nothing (results and answers equal to the run without): {same}; unedited answers "
      f"that differ between float32 and kept block types: {diff} of {len(ans('kept'))}")
sys.exit(0 if same else 1)
PY
