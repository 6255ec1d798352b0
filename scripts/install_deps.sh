#!/usr/bin/env bash
# Installs the Debian packages headpursuit needs to build, test and run its experiments; skips
# the apt step when everything is already there. Run as root (or with sudo).
set -euo pipefail
pkgs=(
  build-essential   # gcc, make
  clang             # libFuzzer harnesses (make fuzz)
  libcjson-dev      # config.json, tokenizer.json, JSONL
  libpcre2-dev      # tokenizer pre-split regexes
  libopenblas-dev   # CPU matrix products
  libopenblas-openmp-dev # the OpenMP build of OpenBLAS: one thread pool with ours
  liblapacke-dev    # CPU least squares / QR helpers
  libcmocka-dev     # C unit-test framework
  libpng-dev        # image input (PNG)
  libjpeg-dev       # image input (JPEG)
  zlib1g-dev        # gzip-compressed IDX datasets (MNIST, Fashion-MNIST)
  python3-numpy     # test scripts compare .npy outputs
  python3-sklearn   # SOMP reference (OrthogonalMatchingPursuit)
  bsdgames          # quiz files: the country-answer QA set
  dataset-fashion-mnist # real IDX images: tests/test_vision_pursuit.py, scripts/vision_demo.sh
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then echo "deps: all present"; exit 0; fi
echo "deps: installing ${missing[*]}"
SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "deps: done"
