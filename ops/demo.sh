#!/usr/bin/env bash
# The main job on the embedded default: a local Kafka broker, the topics, one
# worker; the sample images are submitted and the outputs written to out/demo/.
# Run it through `make demo`, which installs everything first. Everything it
# starts is stopped when it ends, even on Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."

DATA=.cache/kafka/demo
OUT=out/demo
rm -rf "$DATA" "$OUT"

BOOTSTRAP=$(python3 ops/kafka_local.py start --data "$DATA" --port 0)
export KAFKA_BOOTSTRAP_SERVERS=$BOOTSTRAP
export FACEGUARD_ALLOWED_ROOTS=$PWD/samples
export FACEGUARD_GROUP_ID=faceguard-demo
FACEGUARD_PROBE_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export FACEGUARD_PROBE_PORT
WORKER=

cleanup() {
  if [[ -n $WORKER ]] && kill -0 "$WORKER" 2>/dev/null; then
    kill -TERM "$WORKER" && wait "$WORKER" || true
  fi
  python3 ops/kafka_local.py stop --data "$DATA"
  rm -rf "$DATA"
}
trap cleanup EXIT

echo "== Kafka broker at $BOOTSTRAP; creating topics"
faceguard topics create
echo "== starting a worker (log: out/demo-worker.log)"
mkdir -p out
faceguard worker > out/demo-worker.log 2>&1 &
WORKER=$!
echo "== submitting the images in samples/"
mapfile -t SUBMITTED < <(faceguard submit samples/)
printf '   %s\n' "${SUBMITTED[@]}"
echo "== collecting the outputs into $OUT/"
faceguard collect -o "$OUT" --expect "${#SUBMITTED[@]}" --timeout 120
python3 - "$OUT" "${SUBMITTED[@]}" <<'PY'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
for line in sys.argv[2:]:
    request_id, ref = line.split("\t")
    event = json.loads((out / f"{request_id}.json").read_text())
    image = next(p for p in out.glob(f"{request_id}.*") if p.suffix != ".json")
    boxes = ", ".join(f"{f['bbox']} ({f['confidence']:.2f})" for f in event["faces"]) or "none"
    print(f"   {ref.rsplit('/', 1)[-1]:16} -> {image}  faces: {event['total_count']}  boxes: {boxes}  "
          f"{event['processing_time_ms']:.0f} ms")
PY
echo "== the worker's metrics (http://127.0.0.1:$FACEGUARD_PROBE_PORT/metrics):"
python3 - "$FACEGUARD_PROBE_PORT" <<'PY'
import sys, urllib.request
url = f"http://127.0.0.1:{sys.argv[1]}"
for line in urllib.request.urlopen(f"{url}/metrics", timeout=5).read().decode().splitlines():
    if line.startswith(("faceguard_records_finished_total", "faceguard_end_to_end_seconds_count")):
        print("   " + line)
print("   /readyz: " + urllib.request.urlopen(f"{url}/readyz", timeout=5).read().decode())
PY
echo "== masked images and metadata are in $OUT/ (metadata: <request_id>.json)"
