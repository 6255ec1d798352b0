#!/usr/bin/env bash
# vision_demo.sh: the image side of Head Pursuit end to end on the tiny RANDOM LLaVA-NeXT fixture
# (tests/fixtures/tiny-llava) and Debian's Fashion-MNIST: rank the heads on 20 test images
# (class-balanced), show what the top heads write, then evaluate classification and captioning
# with the top-k SOMP / Logit-Lens heads and random controls on 20 other images.
# The model's weights are random, so every number this prints is meaningless: it shows the
# mechanics and the outputs only. docs/VISION.md has the commands for the real
# llava-hf/llava-v1.6-mistral-7b-hf. Takes a few seconds on a CPU.
# Usage: scripts/vision_demo.sh [OUT_DIR] (default results/vision_demo)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-results/vision_demo}
BIN=${HP_BIN:-./headpursuit}
MODEL=tests/fixtures/tiny-llava
FM=/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz
[ -x "$BIN" ] || { echo "vision_demo: build first (make)"; exit 1; }
[ -f "$FM" ] || { echo "vision_demo: needs $FM (apt-get install dataset-fashion-mnist)"; exit 1; }
mkdir -p "$OUT"
echo "== NOTE: random weights; the numbers below mean nothing, only the mechanics are shown =="
data=(--images "$FM" --classes wordlists/fashion_mnist.txt --object "clothing item" --device cpu)
echo "== rank: 20 test images (2 per class), dictionary = the 10 class names"
"$BIN" rank "$MODEL" "${data[@]}" --limit 20 -k 5 --reps "$OUT/reps.safetensors" --out "$OUT/ranking.json"
echo "== heads: what the two top heads write (full vocabulary)"
top=$(python3 -c "import json,sys; o=json.load(open(sys.argv[1]))['somp_order'][:2]; print(','.join(f'{l}.{h}' for l,h in o))" "$OUT/ranking.json")
"$BIN" heads "$MODEL" "${data[@]}" --limit 20 --reps "$OUT/reps.safetensors" --heads "$top" -k 5 --show 5
echo "== eval classify: 20 other images, alpha -1, k = 1,2,4, 5 random draws"
"$BIN" eval "$MODEL" --task classify "${data[@]}" --offset 20 --limit 20 --edit "$OUT/ranking.json" \
    --top 1,2,4 --random 5 --out-dir "$OUT/classify"
echo "== eval caption: colour words, alpha -1 and 5 (ranking for colours on the same 20 images)"
"$BIN" rank "$MODEL" "${data[@]}" --limit 20 --prompt-kind caption --concept wordlists/colors.txt -k 5 \
    --out "$OUT/ranking_colors.json"
"$BIN" eval "$MODEL" --task caption "${data[@]}" --offset 20 --limit 20 --keywords wordlists/colors.txt \
    --edit "$OUT/ranking_colors.json" --top 1,2,4 --random 5 --max-new 16 --out-dir "$OUT/caption"
echo "== outputs in $OUT (random model: the numbers mean nothing)"
