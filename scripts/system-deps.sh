#!/bin/sh
# Debian packages the project needs, installed only when missing (and only when we are root).
# python3-venv: `python3 -m venv` on Debian.
set -eu
missing=""
python3 -c 'import ensurepip' 2>/dev/null || missing="$missing python3-venv"
# mosquitto (+ clients for mosquitto_passwd) and openssl: the real MQTT broker and TLS CA the tests start.
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing="$missing mosquitto"
command -v mosquitto_passwd >/dev/null 2>&1 || missing="$missing mosquitto-clients"
command -v openssl >/dev/null 2>&1 || missing="$missing openssl"
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "missing Debian packages:$missing — install them with: sudo apt-get install -y$missing" >&2
  exit 1
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing
