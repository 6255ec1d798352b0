#!/usr/bin/env bash
# test_quant_generate.sh: greedy answers to country-QA questions are the same with the GGUF
# weights kept in their block type (the default on the CPU) and with --weights-f32, on each
# real model present (SmolLM2-135M Q4_1, Qwen2.5-Coder-0.5B Q4_K_M; scripts/fetch_model.sh).
# Exit 77 (skip) when neither is present. HP_BIN overrides the binary.
set -u
cd "$(dirname "$0")/.."
BIN=${HP_BIN:-./headpursuit}
QUESTIONS=(
    "What is the capital of France?"
    "Which country is Nairobi the capital of?"
    "In which country is the city of Kyoto?"
    "What is the capital of Australia?"
)
ran=0 bad=0
for m in models/SmolLM2-135M-Instruct.Q4_1.gguf models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf; do
    [ -f "$m" ] || { echo "$m absent"; continue; }
    ran=1
    for q in "${QUESTIONS[@]}"; do
        a=$("$BIN" generate "$m" --chat --prompt "$q" --max-new 16 --json --quiet --device cpu) || { echo "FAIL: $m: generate failed"; bad=1; continue; }
        b=$("$BIN" generate "$m" --chat --prompt "$q" --max-new 16 --json --quiet --device cpu --weights-f32) || { echo "FAIL: $m: generate --weights-f32 failed"; bad=1; continue; }
        if [ "$a" == "$b" ]; then
            echo "same  $(basename "$m"): $q -> $a"
        else
            echo "DIFF  $(basename "$m"): $q"; echo "   kept: $a"; echo "   f32:  $b"; bad=1
        fi
    done
done
[ $ran -eq 1 ] || { echo "skipped: no real GGUF model in models/ (scripts/fetch_model.sh)"; exit 77; }
# the comparison bites: a different answer is reported as a difference
[ "$(printf '%s' x)" != "$(printf '%s' y)" ] || { echo "FAIL: comparison does not bite"; bad=1; }
[ $bad -eq 0 ] && echo "test_quant_generate: all answers identical" || exit 1
