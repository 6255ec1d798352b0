#!/usr/bin/env bash
# Creates .venv-ref (git-ignored): the Hugging Face reference environment used only to
# regenerate tests/fixtures (tests/ref/make_fixtures.py). Tests themselves never need it.
# Uses Debian's python3-torch 1.13, numpy 1.24 and python3-pil 9.4.0 through
# --system-site-packages; the pinned PyPI packages below are the last ones known to work with
# torch 1.13 / numpy<2. PIL stays Debian's (not PyPI's Pillow wheel, which bundles its own
# libjpeg): tests/fixtures/images were made with it, and it decodes JPEGs with the same
# libjpeg-turbo 2.1.5 that weights/image.c links. make_image_fixtures.py also reads the photos
# of Debian's python3-skimage (apt-get install python3-skimage).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=/usr/bin/python3
VENV=.venv-ref
if ! "$PY" -c 'import torch, numpy, PIL' 2>/dev/null; then
    echo "setup_ref_env: $PY lacks torch/numpy/PIL; run: apt-get install python3-torch python3-numpy python3-pil python3-venv" >&2
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
# CIDEr-D reference (tests/ref/make_cider_fixtures.py): the scorer is pure Python (numpy); its
# pycocotools dependency is not needed, hence --no-deps. The PTB tokeniser it wraps needs java.
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps pycocoevalcap==1.2
"$VENV/bin/python" - <<'PY'
import numpy, torch, transformers, safetensors, tokenizers, gguf, accelerate, jinja2, PIL
import pycocoevalcap.cider.cider_scorer
assert PIL.__version__ == "9.4.0", "tests/fixtures/images were made with PIL 9.4.0, found " + PIL.__version__
print("ref env ok: torch", torch.__version__, "transformers", transformers.__version__,
      "numpy", numpy.__version__, "safetensors", safetensors.__version__,
      "tokenizers", tokenizers.__version__, "PIL", PIL.__version__)
PY
