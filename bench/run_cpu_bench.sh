#!/usr/bin/env bash
# CPU benchmark, headpursuit against llama.cpp on the same GGUF files and machine state.
# For each model, BENCH_REPS rounds, each one run of ours then one of llama.cpp's (A B A B ...,
# so that drifting machine load hits both alike): prefill pp64 and pp512 (one prompt, logits of
# the last row) and decode tg64, plus each process's peak RSS (/usr/bin/time %M). Ours is
# bench_cpu, which runs exactly what ./headpursuit runs: the same model loading (GGUF block types
# kept unless BENCH_F32=1), the same thread policy (hp_cpu_thread_policy: OMP_WAIT_POLICY=PASSIVE,
# decode products on the backend's pool), one untimed 64-token prefill, then one timed run per
# test. llama.cpp is llama-bench (bench/llamacpp_peer.sh builds it once into build/peer/) with
# -r 1 (its own untimed warm-up per test). Then, with one competing busy process (a shell spin
# loop) on the machine, BUSY_REPS rounds of pp512 for both, to show how prefill holds up when a
# core is shared. Prints per-model medians, spreads (min..max) and ratios as a Markdown table;
# writes nothing into the repository.
#
#   bash bench/run_cpu_bench.sh [MODEL.gguf ...]
#       default: models/SmolLM2-135M-Instruct.Q4_1.gguf models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf
#   BENCH_REPS=10  rounds (>= 10 for the NOTES table);  BUSY_REPS=5  rounds with the busy process
#   THREADS=N      both tools on N threads (default: the number of CPUs)
#   BENCH_BIN=PATH bench_cpu binary (default build/cpu/bench/bench_cpu, else build/cuda/...)
#   BENCH_F32=1    ours with --weights-f32 (the float32 path)
#   BENCH_DEADLINE=EPOCH_SECONDS  start no new round after this time (a slow or loaded machine):
#                  the table reports how many rounds each number is from
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if [[ $# -gt 0 ]]; then MODELS=("$@"); else
    MODELS=(models/SmolLM2-135M-Instruct.Q4_1.gguf models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf); fi
for m in "${MODELS[@]}"; do [[ -f "$m" ]] || { echo "run_cpu_bench: no model file $m" >&2; exit 1; }; done
OURS="${BENCH_BIN:-}"
if [[ -z "$OURS" ]]; then
    for b in build/cpu/bench/bench_cpu build/cuda/bench/bench_cpu; do
        [[ -x "$b" ]] && { OURS="$b"; break; }
    done
fi
[[ -n "$OURS" && -x "$OURS" ]] || {
    echo "run_cpu_bench: no bench_cpu binary: run 'make NO_CUDA=1 bench' first (or set BENCH_BIN)" >&2; exit 1; }
[[ -x /usr/bin/time ]] || { echo "run_cpu_bench: /usr/bin/time (GNU time) is needed for peak RSS" >&2; exit 1; }
PEER_OUT="$(PEER_BUILD_ONLY=1 bash bench/llamacpp_peer.sh)" || {
    echo "run_cpu_bench: llama.cpp peer build failed (bash bench/llamacpp_peer.sh shows why)" >&2; exit 1; }
PEER="$(sed -n 's/^llama-bench: //p' <<<"$PEER_OUT")"
PEER_VER="$(sed -n 's/^llama.cpp: //p' <<<"$PEER_OUT")"
REPS="${BENCH_REPS:-10}"
BUSY_REPS="${BUSY_REPS:-5}"
NCPU="$(nproc)"
THR="${THREADS:-$NCPU}"
F32=()
[[ "${BENCH_F32:-0}" == 1 ]] && F32=(--weights-f32)
TMP="$(mktemp -d)"
BUSY_PID=""
cleanup() { [[ -n "$BUSY_PID" ]] && kill "$BUSY_PID" 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT

# One run of ours: the JSON line of bench_cpu, then "rss_kb N".
ours() { # MODEL PREFILL [--no-decode]
    local out="$TMP/o.txt"
    OMP_NUM_THREADS="$THR" /usr/bin/time -f "rss_kb %M" -o "$TMP/o.rss" \
        "$OURS" "$1" --reps 1 --warmup 1 --prefill "$2" "${@:3}" "${F32[@]}" >"$out" 2>"$TMP/o.err" ||
        { cat "$TMP/o.err" >&2; return 1; }
    grep '^{"bench":"cpu"' "$out"
    cat "$TMP/o.rss"
}
peer() { # MODEL PROMPTS GEN
    /usr/bin/time -f "rss_kb %M" -o "$TMP/p.rss" \
        "$PEER" -m "$1" -p "$2" -n "$3" -t "$THR" -r 1 -o jsonl 2>"$TMP/p.err" | grep '^{' ||
        { cat "$TMP/p.err" >&2; return 1; }
    cat "$TMP/p.rss"
}

LOAD0="$(cut -d' ' -f1-3 /proc/loadavg)"
RAW="$TMP/raw.txt"
for m in "${MODELS[@]}"; do
    echo "== $m: $REPS rounds of ours (pp64, pp512, tg64) then llama.cpp's" >&2
    for r in $(seq 1 "$REPS"); do
        [[ -n "${BENCH_DEADLINE:-}" && $(date +%s) -ge $BENCH_DEADLINE && $r -gt 1 ]] && break
        { echo "round $m idle ours $r"; ours "$m" 64,512; echo "round $m idle peer $r"; peer "$m" 64,512 64; } >>"$RAW"
        echo "   round $r/$REPS done (load $(cut -d' ' -f1 /proc/loadavg))" >&2
    done
done
# one competing busy process: a spinning shell, on any core
bash -c 'while :; do :; done' &
BUSY_PID=$!
sleep 1
for m in "${MODELS[@]}"; do
    echo "== $m with one busy process: $BUSY_REPS rounds of pp512" >&2
    for r in $(seq 1 "$BUSY_REPS"); do
        [[ -n "${BENCH_DEADLINE:-}" && $(date +%s) -ge $BENCH_DEADLINE && $r -gt 1 ]] && break
        { echo "round $m busy ours $r"; ours "$m" 512 --no-decode; echo "round $m busy peer $r"; peer "$m" 512 0; } >>"$RAW"
    done
done
kill "$BUSY_PID"; BUSY_PID=""
LOAD1="$(cut -d' ' -f1-3 /proc/loadavg)"
CPU="$(lscpu | sed -n 's/^Model name: *//p' | head -n1)"

python3 - "$RAW" "$CPU" "$NCPU" "$THR" "$LOAD0" "$LOAD1" "$PEER_VER" "${BENCH_F32:-0}" <<'EOF'
import datetime, json, statistics, sys
raw, cpu, ncpu, thr, load0, load1, peer_ver, f32 = sys.argv[1:]
res = {}  # (model, cond, tool) -> {test: [tok/s...], "rss": [kb...]}
cur = None
for line in open(raw):
    line = line.strip()
    if line.startswith("round "):
        _, model, cond, tool, _ = line.split(" ")
        cur = res.setdefault((model, cond, tool), {})
    elif line.startswith("rss_kb"):
        cur.setdefault("rss", []).append(int(line.split()[1]))
    elif line.startswith('{"bench":"cpu"'):
        o = json.loads(line)
        for p in o["prefill"]:
            cur.setdefault(f"pp{p['T']}", []).append(p["tok_s"])
        if o["decode"]:
            cur.setdefault("tg64", []).append(o["decode"]["tok_s"])
    elif line.startswith("{"):
        o = json.loads(line)
        name = f"pp{o['n_prompt']}" if o["n_gen"] == 0 else f"tg{o['n_gen']}"
        cur.setdefault(name, []).extend(o["samples_ts"])

def med(v): return statistics.median(v)
def fmt(v): return f"{med(v):.1f} ({min(v):.1f}–{max(v):.1f})"
date = datetime.date.today().isoformat()
print(f"**CPU tokens/s, {date}.** {cpu}, {ncpu} logical CPUs, {thr} threads for both tools. "
      f"headpursuit bench_cpu ({'--weights-f32' if f32 == '1' else 'GGUF block types kept'}, the "
      f"thread policy of ./headpursuit) and llama.cpp llama-bench ({peer_ver}), interleaved A B A B; "
      f"median (min–max) of n rounds. Load average (1/5/15 min) before: {load0}; after: {load1}.")
print()
print("| model | test | n | headpursuit tok/s | llama.cpp tok/s | ratio (median) |")
print("|---|---|---:|---:|---:|---:|")
models = []
for (m, c, t) in res:
    if m not in models: models.append(m)
for m in models:
    a, b = res.get((m, "idle", "ours"), {}), res.get((m, "idle", "peer"), {})
    name = m.split("/")[-1]
    for test in ("pp64", "pp512", "tg64"):
        if test in a and test in b:
            print(f"| {name} | {test} | {len(a[test])} | {fmt(a[test])} | {fmt(b[test])} | {med(a[test]) / med(b[test]):.2f} |")
    if "rss" in a and "rss" in b:
        ra, rb = med(a["rss"]) / 1024, med(b["rss"]) / 1024
        print(f"| {name} | peak RSS MiB | {len(a['rss'])} | {ra:.0f} | {rb:.0f} | {ra / rb:.2f} |")
    ba, bb = res.get((m, "busy", "ours"), {}), res.get((m, "busy", "peer"), {})
    if "pp512" in ba and "pp512" in bb and "pp512" in a and "pp512" in b:
        ka, kb = med(ba["pp512"]) / med(a["pp512"]), med(bb["pp512"]) / med(b["pp512"])
        print(f"| {name} | pp512, 1 busy process | {len(ba['pp512'])} | {fmt(ba['pp512'])} | {fmt(bb['pp512'])} | {med(ba['pp512']) / med(bb['pp512']):.2f} |")
        print(f"| {name} | pp512 busy / idle | | {ka:.2f} | {kb:.2f} | |")
print()
print("pp: one prompt of that many tokens, logits of the last row. tg64: 64 single-token steps with "
      "logits; headpursuit's after a 64-token prompt (positions 64..127), llama-bench's from an empty "
      "context. Peak RSS: the whole process (llama-bench maps the GGUF file and allocates its "
      "context; bench_cpu copies the weights it keeps and drops the file's pages).")
EOF
