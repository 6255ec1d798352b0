#!/usr/bin/env bash
# Creates .venv-ref (git-ignored): the Hugging Face reference environment used only to
# regenerate tests/fixtures (tests/ref/make_fixtures.py). Tests themselves never need it.
# Uses Debian's python3-torch 1.13 and numpy 1.24 through --system-site-packages; the pinned
# PyPI packages below are the last ones known to work with torch 1.13 / numpy<2.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=/usr/bin/python3
VENV=.venv-ref
if ! "$PY" -c 'import torch, numpy' 2>/dev/null; then
    echo "setup_ref_env: $PY lacks torch/numpy; run: apt-get install python3-torch python3-numpy python3-venv" >&2
    exit 1
fi
[ -x "$VENV/bin/python" ] || "$PY" -m venv --system-site-packages "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    'numpy<2' \
    transformers==4.46.3 \
    tokenizers==0.20.3 \
    safetensors==0.4.5 \
    huggingface-hub==0.26.5 \
    sentencepiece==0.2.0 \
    gguf==0.10.0 \
    accelerate==1.1.1 \
    jinja2==3.1.4
"$VENV/bin/python" - <<'PY'
import numpy, torch, transformers, safetensors, tokenizers, gguf, accelerate, jinja2
print("ref env ok: torch", torch.__version__, "transformers", transformers.__version__,
      "numpy", numpy.__version__, "safetensors", safetensors.__version__,
      "tokenizers", tokenizers.__version__)
PY
