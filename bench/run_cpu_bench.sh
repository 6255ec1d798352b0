#!/usr/bin/env bash
# One CPU benchmark run, ours and llama.cpp's, back to back on the same GGUF file and machine
# state: bench_cpu (headpursuit, weights dequantised to fp32, OpenBLAS) then
# llama.cpp's llama-bench (bench/llamacpp_peer.sh, built once and cached under build/peer/).
# Prints both tables and then a ready-to-paste Markdown table (date, CPU, threads, load average,
# pp64/pp256/pp512/tg64 tokens/s of each and the ratio); it writes nothing into the repository.
#
#   bash bench/run_cpu_bench.sh [MODEL.gguf]     # default models/SmolLM2-135M-Instruct.Q4_1.gguf
#   BENCH_BIN=PATH  bench_cpu binary (default build/cpu/bench/bench_cpu, else build/cuda/...)
#   BENCH_REPS=5  bench_cpu repeats;  PEER_REPS=3  llama-bench repeats (-r)
#   THREADS=N     both tools on N threads (OMP_NUM_THREADS and llama-bench -t); default: what
#                 OpenMP gives (one per CPU). One thread is the steadier number on a shared
#                 machine, where OpenMP's spinning threads lose badly to other work.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
MODEL="${1:-models/SmolLM2-135M-Instruct.Q4_1.gguf}"
[[ -f "$MODEL" ]] || { echo "run_cpu_bench: no model file $MODEL" >&2; exit 1; }
# The CPU-only build's binary, else the CUDA build's (its CPU backend is the same code).
OURS="${BENCH_BIN:-}"
if [[ -z "$OURS" ]]; then
    for b in build/cpu/bench/bench_cpu build/cuda/bench/bench_cpu; do
        [[ -x "$b" ]] && { OURS="$b"; break; }
    done
fi
[[ -n "$OURS" && -x "$OURS" ]] || {
    echo "run_cpu_bench: no bench_cpu binary: run 'make NO_CUDA=1 bench' first (or set BENCH_BIN)" >&2; exit 1; }

# Build (or find) llama-bench before timing anything, so that a build never overlaps a run.
PEER_BUILD_ONLY=1 bash bench/llamacpp_peer.sh "$MODEL" >/dev/null || {
    echo "run_cpu_bench: llama.cpp peer build failed (bash bench/llamacpp_peer.sh shows why)" >&2; exit 1; }

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
NCPU="$(nproc)"
if [[ -n "${THREADS:-}" ]]; then
    export OMP_NUM_THREADS="$THREADS" PEER_THREADS="$THREADS"
else
    # llama-bench gets the thread count OpenMP gives bench_cpu.
    export PEER_THREADS="${OMP_NUM_THREADS:-$NCPU}"
fi
LOAD0="$(cut -d' ' -f1-3 /proc/loadavg)"

echo "=== headpursuit bench_cpu ==="
"$OURS" "$MODEL" --reps "${BENCH_REPS:-5}" | tee "$TMP/ours.txt"
echo
echo "=== llama.cpp llama-bench ==="
PEER_JSONL="$TMP/peer.jsonl" bash bench/llamacpp_peer.sh "$MODEL" | tee "$TMP/peer.txt"
LOAD1="$(cut -d' ' -f1-3 /proc/loadavg)"
echo

CPU="$(lscpu | sed -n 's/^Model name: *//p' | head -n1)"
CPU="$CPU (family $(lscpu | sed -n 's/^CPU family: *//p' | head -n1) model $(lscpu | sed -n 's/^Model: *//p' | head -n1)$(lscpu | sed -n 's/^Hypervisor vendor: *\(.*\)/, VM on \1/p' | head -n1))"
THREADS_OURS="$(grep -o '"threads":[0-9]*' "$TMP/ours.txt" | head -n1 | cut -d: -f2)"
PEER_VER="$(sed -n 's/^llama.cpp: //p' "$TMP/peer.txt")"

python3 - "$TMP/ours.txt" "$TMP/peer.jsonl" "$CPU" "$NCPU" "$THREADS_OURS" "$LOAD0" "$LOAD1" "$PEER_VER" "$MODEL" <<'EOF'
import datetime, json, statistics, sys

ours_txt, peer_jsonl, cpu, ncpu, thr, load0, load1, peer_ver, model = sys.argv[1:]
ours = next(json.loads(l) for l in open(ours_txt) if l.startswith('{"bench":"cpu"'))
o = {f"pp{p['T']}": p["tok_s"] for p in ours["prefill"]}
o[f"tg{ours['decode']['steps']}"] = ours["decode"]["tok_s"]

peer, pthr = {}, set()
for line in open(peer_jsonl):
    line = line.strip()
    if not line.startswith("{"):
        continue  # llama-bench's own messages share the stream
    r = json.loads(line)
    name = f"pp{r['n_prompt']}" if r["n_gen"] == 0 else f"tg{r['n_gen']}"
    peer[name] = (statistics.median(r["samples_ts"]), r["avg_ts"], r["stddev_ts"])
    pthr.add(r["n_threads"])
    commit = r.get("build_commit", "?")

tests = ["pp64", "pp256", "pp512", "tg64"]
missing = [t for t in tests if t not in o or t not in peer]
if missing:
    sys.exit(f"run_cpu_bench: missing results for {missing}")

date = datetime.date.today().isoformat()
l0 = float(load0.split()[0])
print(f"**CPU tokens/s, {model}, {date}.** CPU: {cpu} ({ncpu} logical CPUs). "
      f"headpursuit: weights dequantised to fp32, OpenBLAS + OpenMP, {thr} threads, median of "
      f"{ours['reps']}. llama.cpp: llama-bench ({peer_ver}, build {commit}), Q4_1 weights with "
      f"quantised dot products, {'/'.join(map(str, sorted(pthr)))} threads, median of its samples. "
      f"Load average (1/5/15 min) before: {load0}; after: {load1}. "
      "This compares the tools as used, not equal arithmetic.")
print()
print("| date | CPU | threads | load avg 1m | test | headpursuit tok/s | llama.cpp tok/s | headpursuit / llama.cpp |")
print("|---|---|---|---|---|---:|---:|---:|")
for t in tests:
    med, avg, sd = peer[t]
    print(f"| {date} | {cpu} | {thr} | {l0:.2f} | {t} | {o[t]:.1f} | {med:.1f} | {o[t] / med:.2f} |")
print()
print("pp: one prompt of that many tokens, logits of the last row. tg64: 64 single-token steps "
      "with logits; headpursuit's start after a 64-token prompt (positions 64..127), "
      "llama-bench's from an empty context (positions 0..63).")
if l0 > int(ncpu):
    print(f"\nWARNING: load average {l0:.2f} exceeds the {ncpu} CPUs: other work shared the cores; "
          "re-run when the machine is quieter.")
EOF
