#!/usr/bin/env bash
# report_screenshot.sh OUT [PNG]: renders OUT/report.html (from `headpursuit run`) in headless
# Chromium (Debian package `chromium`, installed here if missing) and writes a full-page PNG
# (default OUT/report.png): a check that the self-contained report opens in a browser.
set -euo pipefail
if [ $# -lt 1 ]; then
    echo "usage: scripts/report_screenshot.sh OUT [PNG]" >&2
    exit 2
fi
OUT=$1
PNG=${2:-$OUT/report.png}
[ -f "$OUT/report.html" ] || { echo "report_screenshot.sh: $OUT/report.html not found" >&2; exit 1; }
if ! command -v chromium >/dev/null; then
    SUDO=; [ "$(id -u)" -ne 0 ] && SUDO=sudo
    $SUDO apt-get install -y -q chromium >/dev/null
fi
HEIGHT=${HP_SHOT_HEIGHT:-6000}
chromium --headless=new --no-sandbox --disable-gpu --hide-scrollbars --window-size=1200,"$HEIGHT" \
    --screenshot="$(realpath -m "$PNG")" "file://$(realpath "$OUT/report.html")" 2>/dev/null
echo "wrote $PNG"
