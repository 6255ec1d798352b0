#!/usr/bin/env bash
# The project's test command (README's second command; .ci/run calls it): installs what a fresh
# Debian machine lacks, fetches the embedded default model, builds and runs the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
bash scripts/fetch_smollm2.sh
make -j2
make -j2 test
