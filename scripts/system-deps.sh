#!/bin/sh
# Debian packages the project needs, installed only when missing (and only when we are root).
# python3-venv: `python3 -m venv` on Debian. chromium: the page tests (Playwright drives Debian's
# Chromium; its own browser download cannot work offline). fonts-wqy-zenhei: CJK glyphs on pages.
set -eu
missing=""
python3 -c 'import ensurepip' 2>/dev/null || missing="$missing python3-venv"
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
[ -e /usr/share/fonts/truetype/wqy/wqy-zenhei.ttc ] || missing="$missing fonts-wqy-zenhei"
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "missing Debian packages:$missing — install them with: sudo apt-get install -y$missing" >&2
  exit 1
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing
