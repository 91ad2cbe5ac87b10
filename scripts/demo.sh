#!/usr/bin/env bash
# `make demo`: a local Mosquitto for the demo sensors, the sensor simulator, and the service.
# Everything started here stops when the service stops (Ctrl-C).
set -euo pipefail
BIN=${BIN:-.venv/bin}
CONFIG=${CONFIG:-configs/demo.yaml}
MQTT_PORT=${DEMO_MQTT_PORT:-18830}  # the config's mqtt.port; another one is passed on to the service
if [ "$MQTT_PORT" != 18830 ]; then export XUELIANG__MQTT__PORT=$MQTT_PORT; fi
work=$(mktemp -d)
pids=()
# The service runs in the background so that a TERM or INT to this script acts at once (bash
# runs a trap only after its foreground command ends); the cleanup then waits for it to stop.
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

MOSQUITTO=$(command -v mosquitto || echo /usr/sbin/mosquitto)
if [ -x "$MOSQUITTO" ]; then
  printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\n' "$MQTT_PORT" > "$work/mosquitto.conf"
  if [ "$(id -u)" = 0 ]; then echo "user root" >> "$work/mosquitto.conf"; fi
  "$MOSQUITTO" -c "$work/mosquitto.conf" > "$work/mosquitto.log" 2>&1 &
  pids+=($!)
  "$BIN/xueliang" sensors simulate -c "$CONFIG" > "$work/simulator.log" 2>&1 &
  pids+=($!)
  echo "demo: Mosquitto on 127.0.0.1:$MQTT_PORT and the sensor simulator are running"
else
  echo "demo: mosquitto is not installed (sudo apt-get install mosquitto): running without sensor readings" >&2
fi
echo "demo: operations page on http://127.0.0.1:${XUELIANG__API__PORT:-8000} (one row per incident with its clock light; open one to play its clip, download its evidence bundle, confirm it or mark it a false alarm)"
"$BIN/xueliang" run -c "$CONFIG" &
pids+=($!)
wait "$!"
