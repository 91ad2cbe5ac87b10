#!/bin/sh
# Debian packages the project needs, installed only when missing (and only when we are root).
# python3-venv: `python3 -m venv` on Debian. chromium: the page tests (Playwright drives Debian's
# Chromium; its own browser download cannot work offline). fonts-wqy-zenhei: CJK glyphs on pages.
# GStreamer RTSP server + python3-gi: the real RTSP server the tests start (tests/rtsp_server.py).
set -eu
missing=""
python3 -c 'import ensurepip' 2>/dev/null || missing="$missing python3-venv"
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
[ -e /usr/share/fonts/truetype/wqy/wqy-zenhei.ttc ] || missing="$missing fonts-wqy-zenhei"
/usr/bin/python3 -c 'import gi; gi.require_version("GstRtspServer", "1.0"); gi.require_version("Gst", "1.0"); from gi.repository import Gst; Gst.init(None); assert Gst.ElementFactory.find("rtph264pay") and Gst.ElementFactory.find("h264parse") and Gst.ElementFactory.find("qtdemux")' 2>/dev/null \
  || missing="$missing gir1.2-gst-rtsp-server-1.0 gstreamer1.0-rtsp gstreamer1.0-libav gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly python3-gi"
# mosquitto (+ clients for mosquitto_passwd) and openssl: the real MQTT broker and TLS CA the tests start.
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing="$missing mosquitto"
command -v mosquitto_passwd >/dev/null 2>&1 || missing="$missing mosquitto-clients"
command -v openssl >/dev/null 2>&1 || missing="$missing openssl"
# npm: the console's browser libraries (MapLibre GL JS), installed from web/package-lock.json.
command -v npm >/dev/null 2>&1 || missing="$missing npm"
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "missing Debian packages:$missing — install them with: sudo apt-get install -y$missing" >&2
  exit 1
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing
