#!/usr/bin/env bash
# test_fuzz_smoke.sh: builds the libFuzzer harnesses (make fuzz: clang, ASan + UBSan) and runs
# each (safetensors, gguf, config, tokenizer, image, toxic_prompts) for HP_FUZZ_SECONDS (default 15) from its seed folder; a
# crash, leak, sanitizer report or timeout fails the test and leaves the input under
# $BUILD/fuzz/artifacts/. Exit 77 (skip) when clang is missing.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
SECS=${HP_FUZZ_SECONDS:-15}
if ! command -v clang >/dev/null 2>&1; then
    echo "skipped: clang not found"
    exit 77
fi
make -s fuzz BUILD="$BUILD" || { echo "make fuzz failed"; exit 1; }
art="$BUILD/fuzz/artifacts"
mkdir -p "$art"
status=0
for name in safetensors gguf config tokenizer image toxic_prompts; do
    bin="$BUILD/fuzz/fuzz_$name"
    corpus=$(mktemp -d)
    dict=(); [ -f "tests/fuzz/$name.dict" ] && dict=(-dict="tests/fuzz/$name.dict")
    echo "fuzz_$name: ${SECS}s from tests/fuzz/seeds/$name"
    "$bin" -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
        "${dict[@]}" -artifact_prefix="$art/${name}-" -print_final_stats=1 \
        "$corpus" "tests/fuzz/seeds/$name" 2>&1 | grep -E "^(Done|stat::number_of_executed_units|==[0-9]+==|SUMMARY|Test unit written)"
    rc=${PIPESTATUS[0]}
    rm -rf "$corpus"
    if [ "$rc" -ne 0 ]; then
        echo "FAIL: fuzz_$name exited $rc; inputs in $art"
        status=1
    fi
done
exit $status
