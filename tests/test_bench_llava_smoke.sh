#!/usr/bin/env bash
# test_bench_llava_smoke.sh: bench_cuda's llava section at its --tiny shape on the CPU backend
# (random 2-of-3-layer CLIP, projector, 2-layer decoder; the tower over 1, 5 and 10 tiles, then
# one 112x112 anyres image: 5 tiles, features, prefill with the image rows injected). Builds
# bench_cuda if needed, runs it, and checks its JSON lines: one llava_tower line per tile count
# and one llava_prefill line, outputs finite, times positive, and the image-token count of the
# geometry (16 base-tile patches + 8 rows x (8 + newline) = 88; bench/hf_llava.py --tiny builds
# the same model shape). The GPU numbers of this section come from bench/run_gpu_bench.sh.
set -u
cd "$(dirname "$0")/.."
if [ -z "${BUILD:-}" ]; then
    BUILD=build/$(command -v "${NVCC:-nvcc}" >/dev/null 2>&1 && echo cuda || echo cpu)
fi
PY=${HP_PYTHON:-python3}
bin=$BUILD/bench/bench_cuda
# The CPU-only build folder must not be rebuilt with CUDA objects (the Makefile picks CUDA
# whenever nvcc is found).
mk=()
case $BUILD in */cpu) mk=(NO_CUDA=1) ;; esac
make -s BUILD="$BUILD" "${mk[@]}" "$bin" || { echo "FAIL: building $bin"; exit 1; }
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$bin" --device cpu --tiny --llava-tiles 1,5,10 --seed "${HP_SEED:-1234}" >"$out" 2>&1
rc=$?
grep -v '^{' "$out"
if [ $rc -ne 0 ]; then
    echo "FAIL: bench_cuda --device cpu --tiny exited $rc"
    exit 1
fi
"$PY" - "$out" <<'EOF'
import json, math, sys

rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
bad = []
tower = {r["tiles"]: r for r in rows if r.get("kind") == "llava_tower"}
pre = [r for r in rows if r.get("kind") == "llava_prefill"]
if sorted(tower) != [1, 5, 10]:
    bad.append(f"llava_tower lines for tiles {sorted(tower)}, expected [1, 5, 10]")
if len(pre) != 1:
    bad.append(f"{len(pre)} llava_prefill lines, expected 1")
for r in list(tower.values()) + pre:
    tag = f"{r['kind']} {r.get('tiles')}"
    if r.get("bench") != "cpu" or r.get("tiny") is not True:
        bad.append(f"{tag}: bench {r.get('bench')!r}, tiny {r.get('tiny')!r}")
    if r.get("finite") is not True:
        bad.append(f"{tag}: non-finite output")
    if r.get("mfu") is not None:
        bad.append(f"{tag}: an MFU without a measured ceiling")
    for k in ("ms", "tflops", "gflop") + (("tiles_per_s",) if r["kind"] == "llava_tower" else
                                          ("vision_ms", "decoder_ms", "decoder_noinject_ms", "tokens_per_s")):
        v = r.get(k)
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
            bad.append(f"{tag}: {k} = {v!r}")
if pre:
    p = pre[0]
    want = {"tiles": 5, "image": [112, 112], "image_tokens": 88, "tokens": 88 + 18}
    for k, v in want.items():
        if p.get(k) != v:
            bad.append(f"llava_prefill: {k} = {p.get(k)!r}, expected {v!r}")
    if not p["ms"] >= max(p["vision_ms"], p["decoder_ms"]):
        bad.append("llava_prefill: total below one of its parts")
for b in bad:
    print("FAIL:", b)
print(f"checked {len(tower)} llava_tower + {len(pre)} llava_prefill lines: "
      f"{'ok' if not bad else str(len(bad)) + ' problems'}")
sys.exit(1 if bad else 0)
EOF
