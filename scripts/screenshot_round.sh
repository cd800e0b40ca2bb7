#!/usr/bin/env bash
# Screenshot of the round's picture as the Dagster UI renders it: docs/round-partition.png.
#
# Starts `dagster dev` on a free loopback port with a seeded demo round in a fresh temporary
# home (as `make run` does), waits until round 1's `submission_scores` partition is
# materialized, dismisses the first-run dialog (GraphQL `setNuxSeen`), screenshots the asset's
# partition page with headless Chromium (scripts/screenshot_page.py opens the picture's
# "Show Markdown" dialog), and stops everything it started.
#
# Needs: `make install`, and Chromium (Debian: `apt-get install -y chromium`).
# Usage: scripts/screenshot_round.sh [OUTPUT.png]   (default docs/round-partition.png)
set -euo pipefail
set -m  # job control: `dagster dev` in the background then honours SIGTERM (its own group)

cd "$(dirname "$0")/.."
OUT=${1:-docs/round-partition.png}
BIN=.venv/bin
CHROMIUM=${CHROMIUM:-$(command -v chromium || command -v chromium-browser)}
WORK=$(mktemp -d)
export NUMERAI_ASSETS_HOME=$WORK/home
export DAGSTER_HOME=$NUMERAI_ASSETS_HOME/dagster_home
export NUMERAI_SENSOR_INTERVAL_SECONDS=5
PORT=$($BIN/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
URL=http://127.0.0.1:$PORT
DAGSTER_PID=

stop() {
    if [ -n "$DAGSTER_PID" ] && kill -0 "$DAGSTER_PID" 2>/dev/null; then
        kill -TERM -- "-$DAGSTER_PID" 2>/dev/null || true
        for _ in $(seq 60); do kill -0 "$DAGSTER_PID" 2>/dev/null || break; sleep 0.5; done
        kill -KILL -- "-$DAGSTER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap stop EXIT

graphql() {  # one GraphQL request; prints the answer
    curl -sf "$URL/graphql" -H 'Content-Type: application/json' \
        -d "$($BIN/python -c 'import json, sys; print(json.dumps({"query": sys.argv[1]}))' "$1")"
}

$BIN/numerai-assets demo seed --rows 3000 >/dev/null
mkdir -p "$DAGSTER_HOME"
cp deploy/local/dagster.yaml "$DAGSTER_HOME/dagster.yaml"
$BIN/dagster dev -h 127.0.0.1 -p "$PORT" -w workspace.yaml >"$WORK/dagster.log" 2>&1 &
DAGSTER_PID=$!

echo "waiting for the webserver at $URL"
for _ in $(seq 180); do curl -sf "$URL/server_info" >/dev/null && break; sleep 1; done
curl -sf "$URL/server_info" >/dev/null || { tail -50 "$WORK/dagster.log"; exit 1; }

echo "waiting for round 1 to be scored"
QUERY='{ assetOrError(assetKey: {path: ["submission_scores"]}) { ... on Asset {
  assetMaterializations(partitions: ["1"], limit: 1) { runId } } } }'
for _ in $(seq 300); do
    graphql "$QUERY" | grep -q '"runId"' && break
    sleep 1
done
graphql "$QUERY" | grep -q '"runId"' || { tail -50 "$WORK/dagster.log"; exit 1; }

graphql 'mutation { setNuxSeen }' >/dev/null
mkdir -p "$(dirname "$OUT")"
$BIN/python scripts/screenshot_page.py "$CHROMIUM" \
    "$URL/assets/submission_scores?view=partitions&partition=1" round_picture "$OUT"
echo "wrote $OUT"
