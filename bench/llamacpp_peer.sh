#!/usr/bin/env bash
# llama.cpp as a peer for bench/bench_cpu: builds llama.cpp's `llama-bench` from the llama.cpp
# sources vendored in PyPI's llama-cpp-python sdist (nothing of llama.cpp is kept in this repo),
# caches the build under build/peer/ (git-ignored), then runs it on the same GGUF file with the
# shapes bench_cpu measures: prefill of 64/256/512 tokens, decode of 64 tokens.
#
#   bash bench/llamacpp_peer.sh [MODEL.gguf]     # default models/SmolLM2-135M-Instruct.Q4_1.gguf
#   LLAMA_CPP_PY_VERSION=0.3.16  the sdist to build from (its llama.cpp reads SmolLM2 GGUFs)
#   PEER_BUILD_ONLY=1            build (or find the cached build) and stop
#   PEER_JOBS=2                  parallel compile jobs; PEER_THREADS=2  llama-bench -t
#   PEER_REPS=3                  llama-bench -r
#   PEER_JSONL=FILE              also write llama-bench's per-test JSON lines (with every
#                                sample) to FILE; llama-bench's own messages then go there too
# The last line printed is `llama-bench: PATH`, and the llama-bench table goes to stdout
# (markdown); bench/run_cpu_bench.sh parses it.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MODEL="${1:-$ROOT/models/SmolLM2-135M-Instruct.Q4_1.gguf}"
VER="${LLAMA_CPP_PY_VERSION:-0.3.16}"
JOBS="${PEER_JOBS:-2}"
THREADS="${PEER_THREADS:-2}"
REPS="${PEER_REPS:-3}"
PEER="$ROOT/build/peer"
SRC="$PEER/llama_cpp_python-$VER"
LLAMA="$SRC/vendor/llama.cpp"
BLD="$PEER/build-$VER"
BIN="$BLD/bin/llama-bench"

if [[ ! -x "$BIN" ]]; then
    command -v cmake >/dev/null || { echo "llamacpp_peer: cmake not found" >&2; exit 1; }
    command -v g++ >/dev/null || { echo "llamacpp_peer: g++ not found" >&2; exit 1; }
    mkdir -p "$PEER"
    TGZ="$PEER/llama_cpp_python-$VER.tar.gz"
    if [[ ! -f "$TGZ" ]]; then
        echo "llamacpp_peer: downloading the llama-cpp-python==$VER sdist" >&2
        python3 -m pip download --no-deps --no-binary :all: -d "$PEER" "llama-cpp-python==$VER" >&2
    fi
    if [[ ! -f "$LLAMA/CMakeLists.txt" ]]; then
        tar -xzf "$TGZ" -C "$PEER"
    fi
    # Static libraries so that the binary needs nothing from the build tree at run time; only the
    # llama-bench target, since a full build takes a long time on two cores.
    cmake -S "$LLAMA" -B "$BLD" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF \
          -DGGML_NATIVE=ON -DGGML_OPENMP=ON -DLLAMA_CURL=OFF \
          -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF >&2
    cmake --build "$BLD" --config Release --target llama-bench -j "$JOBS" >&2
fi
[[ -x "$BIN" ]] || { echo "llamacpp_peer: build produced no $BIN" >&2; exit 1; }

# The llama.cpp commit the sdist vendors (the submodule's HEAD travels in the sdist's .git).
COMMIT="$(cat "$SRC/.git/modules/vendor/llama.cpp/HEAD" 2>/dev/null || echo unknown)"
echo "llama.cpp: from llama-cpp-python $VER, vendored commit ${COMMIT:0:12}"
[[ "${PEER_BUILD_ONLY:-0}" == 1 ]] && { echo "llama-bench: $BIN"; exit 0; }

[[ -f "$MODEL" ]] || { echo "llamacpp_peer: no model file $MODEL" >&2; exit 1; }
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
ARGS=(-m "$MODEL" -p "64,256,512" -n 64 -t "$THREADS" -r "$REPS" -o md)
if [[ -n "${PEER_JSONL:-}" ]]; then
    "$BIN" "${ARGS[@]}" -oe jsonl 2>"$PEER_JSONL" || { cat "$PEER_JSONL" >&2; exit 1; }
else
    "$BIN" "${ARGS[@]}"
fi
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "llama-bench: $BIN"
