#!/usr/bin/env bash
# run_gpu_bench.sh: everything the GPU machine has to run, in phases that each fit one device
# call (10 minutes): build for Hopper (sm_90a), the test suite, compute-sanitizer on the CUDA
# tests, bench_cuda, and the PyTorch / transformers peers. Logs and JSON lines go to $OUT (the
# device tool's output folder; /tmp/hp-gpu-out elsewhere), at most a few files per phase.
#
#   bash bench/run_gpu_bench.sh fetch-debs     # HERE (needs the Debian mirror): build deps as .debs
#   bash bench/run_gpu_bench.sh build test     # on the GPU machine, carry [".hpdeps"]
#   bash bench/run_gpu_bench.sh sanitize
#   bash bench/run_gpu_bench.sh bench          # bench_cuda (all sections, llava included)
#   bash bench/run_gpu_bench.sh peers          # hf_prefill.py + torch_somp.py + hf_llava.py
# Phases run in the order given; `all` = build test sanitize bench peers (longer than one call).
# build/test are for the GPU machine's copy of the tree: like `make`, they relink ./headpursuit.
#
# The GPU machine cannot download anything and its image lacks the C libraries headpursuit
# links (cJSON, PCRE2, OpenBLAS, cmocka, libpng, libjpeg): `fetch-debs` saves them as
# .debs in .hpdeps/ (ignored by git through .git/info/exclude, ~19 MB); on the GPU machine they
# are unpacked under /tmp/hpdeps (never into /) and found through the compiler's and loader's
# search-path variables (HP_FORCE_DEBS=1 uses them even where the system has the libraries). The
# build lives in build/gpu (HP_GPU_BUILD; ignored by git, kept while the machine is warm).
#
# Profiling (not run here; nsys may be missing from PATH on some images, see the device notes):
#   nsys profile -t cuda,nvtx,cublas --cuda-memory-usage=true -o "$OUT/prefill" \
#       build/gpu/bench/bench_cuda --only prefill --batches 8 --prompts 512
#   then: nsys stats --report nvtx_sum,cuda_gpu_kern_sum "$OUT/prefill.nsys-rep"
# The NVTX ranges (ceilings, ops, load, forward, generate, llava, llava:tower, llava:prefill,
# somp, somp:group) name the phases.
# A shorter call: HP_BENCH_ARGS="--only llava" (bench_cuda), HP_PEERS="hf_llava" (peers: any of
# hf_prefill torch_somp hf_llava, in that order).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/hp-gpu-out}
mkdir -p "$OUT"
BUILD=${HP_GPU_BUILD:-build/gpu}
ARCH='-gencode arch=compute_90a,code=sm_90a'
JOBS=$(nproc 2>/dev/null || echo 4)
DEPS=/tmp/hpdeps
DEB_PKGS="libcjson-dev libcjson1 libpcre2-dev libpcre2-8-0 libpcre2-16-0 libpcre2-32-0
  libpcre2-posix3 libopenblas0-openmp libopenblas-openmp-dev liblapack3
  libgfortran5 libcmocka0 libcmocka-dev libpng-dev libpng16-16 libjpeg62-turbo
  libjpeg62-turbo-dev libjpeg-dev zlib1g-dev"
MAKEVARS=()
DEPS_READY=0
export PATH=$PATH:/usr/local/cuda/bin

say() { printf '\n### %s (%s)\n' "$*" "$(date +%H:%M:%S)"; }

fetch_debs() {
    mkdir -p .hpdeps
    grep -qx '/.hpdeps/' .git/info/exclude 2>/dev/null || echo '/.hpdeps/' >>.git/info/exclude
    # shellcheck disable=SC2086
    (cd .hpdeps && apt-get download $DEB_PKGS) || return 1
    du -sh .hpdeps
    echo "now call the device with carry [\".hpdeps\"]"
}

# Uses the system's libraries when they are there, else the carried .debs under /tmp/hpdeps.
setup_deps() {
    if [ -z "${HP_FORCE_DEBS:-}" ] && printf '#include <cJSON.h>\n#include <cblas.h>\n#include <cmocka.h>\n' |
        gcc -E -I/usr/include/cjson -x c - -o /dev/null 2>/dev/null; then
        echo "deps: system libraries"
        DEPS_READY=1
        return 0
    fi
    if ! ls .hpdeps/*.deb >/dev/null 2>&1; then
        echo "deps: missing C libraries and no .hpdeps/*.deb carried (run fetch-debs here first)" >&2
        return 1
    fi
    if [ ! -f "$DEPS/usr/include/cjson/cJSON.h" ]; then
        mkdir -p "$DEPS"
        for f in .hpdeps/*.deb; do dpkg -x "$f" "$DEPS"; done
    fi
    local inc=$DEPS/usr/include lib=$DEPS/usr/lib/x86_64-linux-gnu
    export C_INCLUDE_PATH="$inc:$inc/cjson:$inc/x86_64-linux-gnu:$inc/x86_64-linux-gnu/openblas-openmp${C_INCLUDE_PATH:+:$C_INCLUDE_PATH}"
    export LIBRARY_PATH="$lib:$lib/openblas-openmp${LIBRARY_PATH:+:$LIBRARY_PATH}"
    export LD_LIBRARY_PATH="$lib:$lib/openblas-openmp${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    MAKEVARS=(OPENBLAS_DIR="$lib/openblas-openmp")
    DEPS_READY=1
    echo "deps: carried .debs under $DEPS"
}

gpu_info() {
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem --format=csv 2>&1 | head -3
    nvcc --version | tail -2
}

phase_build() {
    say build
    gpu_info
    make -j"$JOBS" BUILD=$BUILD CUDA_ARCH="$ARCH" "${MAKEVARS[@]}" headpursuit bench 2>&1 | tail -n 25
    local rc=${PIPESTATUS[0]}
    # the test binaries (make test would also run them; the test phase does that)
    make -j"$JOBS" BUILD=$BUILD CUDA_ARCH="$ARCH" "${MAKEVARS[@]}" \
        $(ls tests/test_*.c | sed "s#tests/\(.*\)\.c#$BUILD/tests/\1#") 2>&1 | tail -n 5
    return $((rc | PIPESTATUS[0]))
}

phase_test() {
    say test
    export HP_PYTHON=${HP_PYTHON:-$(command -v python3)}
    HP_TEST_VERBOSE=1 make BUILD=$BUILD CUDA_ARCH="$ARCH" "${MAKEVARS[@]}" test >"$OUT/test.log" 2>&1
    local rc=$?
    grep -E '^(PASS|FAIL|SKIP)|^tests:|^failed:|^    \| ' "$OUT/test.log" | head -n 200
    echo "-- GPU tests in full:"
    grep -E '^    \. ' "$OUT/test.log" | grep -E 'seed|device|ok  |FAIL|checks' | grep -v '^    \.  *$' |
        tail -n 60
    return "$rc"
}

phase_sanitize() {
    say sanitize
    local rc=0 seed=${HP_SEED:-20260101}
    for t in test_somp_cuda test_cuda_ops; do
        for tool in memcheck racecheck; do
            local extra=()
            [ $tool = memcheck ] && extra=(--leak-check full)
            echo "-- compute-sanitizer --tool $tool $t (HP_SEED=$seed)"
            HP_SEED=$seed HP_GPU_TEST_OPS_ONLY=1 timeout 420 compute-sanitizer --tool $tool "${extra[@]}" --error-exitcode 99 \
                "$BUILD/tests/$t" >"$OUT/sanitize_${t}_$tool.log" 2>&1
            local r=$?
            tail -n 4 "$OUT/sanitize_${t}_$tool.log"
            echo "   exit $r (0 clean, 77 skipped, 99 sanitizer errors, 124 timeout)"
            [ $r -eq 0 ] || [ $r -eq 77 ] || rc=1
        done
    done
    return $rc
}

phase_bench() {
    say bench_cuda
    "$BUILD/bench/bench_cuda" ${HP_BENCH_ARGS:-} 2>&1 | tee "$OUT/bench_cuda.log" | grep -v '^{'
    local rc=${PIPESTATUS[0]}
    grep '^{' "$OUT/bench_cuda.log" >"$OUT/bench_cuda.jsonl"
    return "$rc"
}

# Each peer tees its own log; their JSON lines are gathered into peers.jsonl.
phase_peers() {
    say "peers (python3: $(command -v python3))"
    python3 -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)'
    local rc=0 logs=() p args
    for p in ${HP_PEERS:-hf_prefill torch_somp hf_llava}; do
        case $p in
        hf_prefill) args=${HP_HF_ARGS:-} ;;
        torch_somp) args=${HP_TORCH_SOMP_ARGS:-} ;;
        hf_llava) args=${HP_HF_LLAVA_ARGS:-} ;;
        *) echo "unknown peer $p (hf_prefill, torch_somp, hf_llava)" >&2; rc=1; continue ;;
        esac
        echo "-- bench/$p.py $args"
        # shellcheck disable=SC2086
        PYTHONUNBUFFERED=1 python3 "bench/$p.py" $args 2>&1 | tee "$OUT/$p.log" | grep -v '^{'
        rc=$((rc | PIPESTATUS[0]))
        logs+=("$OUT/$p.log")
    done
    [ ${#logs[@]} -gt 0 ] && grep -h '^{' "${logs[@]}" >"$OUT/peers.jsonl"
    return "$rc"
}

[ $# -gt 0 ] || { sed -n '2,25p' "$0"; exit 2; }
phases=("$@")
[ "${phases[0]}" = all ] && phases=(build test sanitize bench peers)
status=0
for p in "${phases[@]}"; do
    case $p in
    fetch-debs) fetch_debs || status=1 ;;
    build | test | sanitize | bench)
        [ $DEPS_READY = 1 ] || setup_deps || exit 1
        "phase_$p" || { status=1; echo "phase $p FAILED"; } ;;
    peers) phase_peers || { status=1; echo "phase peers FAILED"; } ;;
    *) echo "unknown phase $p" >&2; exit 2 ;;
    esac
done
echo "run_gpu_bench: phases ${phases[*]}: $([ $status -eq 0 ] && echo ok || echo FAILED); logs in $OUT"
exit $status
