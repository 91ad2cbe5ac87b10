#!/usr/bin/env bash
# `make demo`: a local Mosquitto for the demo sensors, the sensor simulator, and the service.
# Everything started here stops when the service stops (Ctrl-C).
set -euo pipefail
BIN=${BIN:-.venv/bin}
CONFIG=${CONFIG:-configs/demo.yaml}
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT INT TERM

MOSQUITTO=$(command -v mosquitto || echo /usr/sbin/mosquitto)
if [ -x "$MOSQUITTO" ]; then
  printf 'listener 18830 127.0.0.1\nallow_anonymous true\npersistence false\n' > "$work/mosquitto.conf"
  if [ "$(id -u)" = 0 ]; then echo "user root" >> "$work/mosquitto.conf"; fi
  "$MOSQUITTO" -c "$work/mosquitto.conf" > "$work/mosquitto.log" 2>&1 &
  pids+=($!)
  "$BIN/xueliang" sensors simulate -c "$CONFIG" > "$work/simulator.log" 2>&1 &
  pids+=($!)
  echo "demo: Mosquitto on 127.0.0.1:18830 and the sensor simulator are running"
else
  echo "demo: mosquitto is not installed (sudo apt-get install mosquitto): running without sensor readings" >&2
fi
echo "demo: operations page on http://127.0.0.1:8000"
"$BIN/xueliang" run -c "$CONFIG"
