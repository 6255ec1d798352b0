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
  libcmocka-dev     # C unit-test framework
  liblapacke-dev    # the CUDA emulation's cuSOLVER (tests/cuda_emu: dgeqrf, dormqr)
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
# Another apt/dpkg (unattended-upgrades on a fresh machine, a second shell) may hold the lock:
# wait for it, saying so, up to HP_APT_LOCK_WAIT seconds (default 10 min), instead of failing.
LOCK_WAIT=${HP_APT_LOCK_WAIT:-600} LOCK_POLL=${HP_APT_LOCK_POLL:-10}
apt_locked_retry() {
  local err waited=0 said=0
  err=$(mktemp)
  while ! "$@" 2>"$err" >/dev/null; do
    if ! grep -qiE "could not get lock|unable to acquire the dpkg frontend lock|unable to lock" "$err"; then
      cat "$err" >&2; rm -f "$err"; return 1
    fi
    if awk -v w="$waited" -v m="$LOCK_WAIT" 'BEGIN { exit !(w >= m) }'; then
      echo "deps: the apt/dpkg lock is still held after ${LOCK_WAIT}s; giving up:" >&2
      cat "$err" >&2; rm -f "$err"; return 1
    fi
    if [ "$said" -eq 0 ]; then
      echo "deps: another apt/dpkg process holds the lock ($(grep -m1 -i lock "$err" | sed 's/^E: //'));" \
           "waiting for it (up to ${LOCK_WAIT}s)..." >&2
      said=1
    fi
    sleep "$LOCK_POLL"
    waited=$(awk -v w="$waited" -v p="$LOCK_POLL" 'BEGIN { print w + p }')
  done
  [ "$said" -eq 0 ] || echo "deps: lock released after ${waited}s" >&2
  rm -f "$err"
}
apt_locked_retry $SUDO apt-get update -qq
apt_locked_retry $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "deps: done"
