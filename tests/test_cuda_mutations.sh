#!/usr/bin/env bash
# test_cuda_mutations.sh: shows that the emulated GPU tests (tests/test_cuda_emu.sh) catch real
# kernel bugs. Each mutant plants one bug in a COPY of one kernel source (kernels/ is never
# touched), rebuilds only that kernel against the emulator (tests/cuda_emu/emu.mk, EMU_KSRC and
# EMU_KOUT), and runs test_cuda_ops on the group of checks the bug lies in; the test must fail.
# A mutation whose text no longer occurs in the kernel fails this script, so a kernel edit
# cannot silently retire a mutant. Two mutants build and run at a time (two cores).
# Exit 0 every mutant caught, 1 otherwise, 77 when the emulated tests are not built.
set -u
cd "$(dirname "$0")/.."
EMU=${EMU:-build/emu}
if [ ! -x "$EMU/k/tests/test_cuda_ops" ] || [ ! -f "$EMU/libhp_emu.a" ]; then
    echo "skipped: the emulated GPU tests are not built (make emu)"
    exit 77
fi
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1}
export HP_GPU_TEST_REDUCED=1 HP_GPU_TEST_FAIL_FAST=1
export OMP_NUM_THREADS=1 # one core per mutant: two run side by side

# name | kernel file | checks to run | text | replacement (\n is a newline; each text must occur
# exactly once)
MUTANTS=(
"tiled mask off by one|attention.cu|attn_prefill_tiled|sc[nt][0] = (key >= la && key <= ha)|sc[nt][0] = (key >= la && key < ha)"
"P·V fragments swapped|attention.cu|attn_prefill_tiled|mma_bf16_16816(o[2 * dt], pa, vf[0], vf[1]);|mma_bf16_16816(o[2 * dt], pa, vf[1], vf[0]);"
"split chunks one key short|attention.cu|attn_decode_split|c1 = min(c0 + csize, hi + 1);|c1 = min(c0 + csize, hi);"
"missing __syncthreads in block_sum|norm.cu|rmsnorm|    if (lane == 0) red[warp] = v;\n    __syncthreads();|    if (lane == 0) red[warp] = v;"
"wrong lane in the row-max shuffle|attention.cu|attn_prefill_tiled|mx_b = fmaxf(mx_b, __shfl_xor_sync(0xffffffffu, mx_b, 2));|mx_b = fmaxf(mx_b, __shfl_xor_sync(0xffffffffu, mx_b, 4));"
"GLU tail element dropped|act.cu|glu|for (size_t i = nvec * 8 + i0; i < n; i += stride)\n        out[i]|for (size_t i = nvec * 8 + i0; i + 1 < n; i += stride)\n        out[i]"
"missing barrier before the split tile's scores|attention.cu|attn_decode_split|        __syncthreads();\n        /* scores: pair|        /* scores: pair"
"rope writes one (cos, sin) pair past its shared memory|rope.cu|rope|i < half; i += blockDim.x) {|i <= half; i += blockDim.x) {"
)

run_mutant() { # index
    local IFS='|'
    read -r name file group old new <<<"${MUTANTS[$1]}"
    local dir=$EMU/mut/$1 log=$EMU/mut/$1.log
    rm -rf "$dir"
    mkdir -p "$dir/src" "$dir/k"
    cp -p kernels/*.cu "$dir/src/"
    cp -p "$EMU"/k/*.cu.cc "$EMU"/k/*.cu.o "$dir/k/"
    if ! python3 - "$dir/src/$file" "$old" "$new" <<'PY'
import sys
path, old, new = (a.replace("\\n", "\n") for a in sys.argv[1:4])
s = open(path, encoding="utf-8").read()
if s.count(old) != 1:
    sys.exit(f"the mutation text occurs {s.count(old)} times in {path}, not once")
open(path, "w", encoding="utf-8").write(s.replace(old, new))
PY
    then
        echo "FAIL  mutant '$name': cannot be applied to kernels/$file"
        return 1
    fi
    if ! make --no-print-directory EMU="$EMU" EMU_KSRC="$dir/src" EMU_KOUT="$dir/k" \
         "$dir/k/tests/test_cuda_ops" >"$log" 2>&1; then
        echo "FAIL  mutant '$name': does not build"; tail -n 20 "$log"
        return 1
    fi
    { HP_GPU_TEST_ONLY=$group "$dir/k/tests/test_cuda_ops" >>"$log" 2>&1; } 2>/dev/null
    local rc=$?
    if [ $rc -eq 0 ]; then
        echo "FAIL  mutant '$name' ($file) was NOT caught by the $group checks"
        return 1
    fi
    local why where
    why=$(grep -m1 -E '^FAIL|cuda_emu: ERROR|AddressSanitizer' "$log" | cut -c1-110)
    where=$(grep -m1 'cuda_emu: in kernel' "$log")
    [ -n "$where" ] && why="$why; $where"
    echo "ok    mutant '$name' ($file) caught by the $group checks (exit $rc): $why"
    rm -rf "$dir"
}

fail=0
n=${#MUTANTS[@]}
for ((i = 0; i < n; i += 2)); do
    out1=$(mktemp) out2=$(mktemp)
    run_mutant $i >"$out1" 2>&1 &
    p1=$!
    rc2=0
    if [ $((i + 1)) -lt $n ]; then run_mutant $((i + 1)) >"$out2" 2>&1 || rc2=1; fi
    wait $p1 || fail=1
    [ $rc2 -eq 0 ] || fail=1
    cat "$out1" "$out2"
    rm -f "$out1" "$out2"
done
[ $fail -eq 0 ] && echo "$n checks: all $n mutants caught" || echo "some mutants survived"
exit $fail
