#!/usr/bin/env bash
# The project's test command (README's second command; .ci/run calls it): installs what a fresh
# Debian machine lacks, fetches the real models the parity tests use, builds and runs the whole
# suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
bash scripts/fetch_model.sh smollm2 qwen2.5-coder-0.5b  # real-model parity checks (~590 MB)
make -j2
make -j2 test
