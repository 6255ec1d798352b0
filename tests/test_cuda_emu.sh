#!/usr/bin/env bash
# test_cuda_emu.sh: the GPU tests, tests/test_cuda_ops.c and tests/test_somp_cuda.c, unchanged, on
# the CPU emulation of the CUDA thread model (tests/cuda_emu/README.md): every kernel of
# kernels/*.cu runs, with AddressSanitizer on device memory and shared memory, on machines
# without a GPU. `make emu` (a prerequisite of `make test`) builds them under build/emu.
# HP_GPU_TEST_REDUCED=1 leaves out the model checks too large for the emulator (CLIP-L at its
# real shape, SmolLM2) and the CPU-only checks the normal build already runs. The two run side
# by side (two cores), after the emulator's self-test (tests/cuda_emu/selftest.cu).
# Exit 0 all passed, 1 a failure, 77 not built.
set -u
cd "$(dirname "$0")/.."
EMU=${EMU:-build/emu}
ops=$EMU/k/tests/test_cuda_ops somp=$EMU/k/tests/test_somp_cuda self=$EMU/selftest
if [ ! -x "$ops" ] || [ ! -x "$somp" ] || [ ! -x "$self" ]; then
    echo "skipped: the emulated GPU tests are not built (make emu)"
    exit 77
fi
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1}
export HP_GPU_TEST_REDUCED=1
export OMP_NUM_THREADS=1 # one core each: the two tests run side by side
log_ops=$(mktemp) log_somp=$(mktemp)
trap 'rm -f "$log_ops" "$log_somp"' EXIT
# the emulator's own primitives first: nothing below means anything if they are wrong
if ! "$self" >"$log_ops" 2>&1; then
    echo "FAIL cuda_emu selftest:"; cat "$log_ops"; exit 1
fi
n0=$(grep -E '^[0-9]+ checks' "$log_ops" | cut -d' ' -f1)
"$ops" >"$log_ops" 2>&1 &
p1=$!
"$somp" >"$log_somp" 2>&1
rc2=$?
wait $p1
rc1=$?
summary() { grep -E '^[0-9]+ checks' "$1" | tail -n 1; }
fails() { grep -E '^FAIL|ERROR|AddressSanitizer' "$1" | head -n 20; }
echo "test_cuda_ops on cuda_emu (exit $rc1): $(summary "$log_ops")"
[ "$rc1" -eq 0 ] || { fails "$log_ops"; tail -n 30 "$log_ops"; }
echo "test_somp_cuda on cuda_emu (exit $rc2): $(summary "$log_somp")"
[ "$rc2" -eq 0 ] || { fails "$log_somp"; tail -n 30 "$log_somp"; }
n1=$(summary "$log_ops" | cut -d' ' -f1) n2=$(summary "$log_somp" | cut -d' ' -f1)
[ "$rc1" -eq 0 ] && [ "$rc2" -eq 0 ] || exit 1
echo "$((n0 + n1 + n2)) checks passed on cuda_emu ($n0 selftest, $n1 test_cuda_ops, $n2 test_somp_cuda)"
