#!/usr/bin/env bash
# Runs the NordIQ suite on its embedded development default: no root, no systemd, state in
# ./.nordiq, API key in ./.nordiq_key. Starts nordiq-inference, the simulated fleet
# (nordiq-metrics simulate: 20 servers, 4 days of history backfilled, then live samples
# every 5 s) and the dashboard, waits for the first forecasts, and shows where to look.
# `scripts/demo.sh stop` stops them. Ports: NORDIQ_DEMO_PORT (default 8000),
# NORDIQ_DASHBOARD_PORT (8050), NORDIQ_SIMULATOR_PORT (8010, the scenario API).
set -euo pipefail
cd "$(dirname "$0")/.."
port="${NORDIQ_DEMO_PORT:-8000}"
url="http://127.0.0.1:$port"
dash_port="${NORDIQ_DASHBOARD_PORT:-8050}"
sim_port="${NORDIQ_SIMULATOR_PORT:-8010}"
run=.nordiq/run

stop() {
    for name in dashboard feed inference; do
        if [ -f "$run/$name.pid" ]; then
            kill "$(cat "$run/$name.pid")" 2>/dev/null || true
            rm -f "$run/$name.pid"
        fi
    done
}

if [ "${1:-}" = "stop" ]; then
    stop
    echo "stopped"
    exit 0
fi

scripts/ensure-deps.sh
echo "==> building (debug)"
cargo build --quiet -p nordiq-inference -p nordiq-ctl -p nordiq-dashboard -p nordiq-metrics
stop
mkdir -p "$run"

echo "==> starting nordiq-inference --dev on $url"
target/debug/nordiq-inference --dev --listen "127.0.0.1:$port" >"$run/inference.log" 2>&1 &
echo $! >"$run/inference.pid"
for _ in $(seq 1 100); do
    if target/debug/nordiqctl --dev --url "$url" status >/dev/null 2>&1; then break; fi
    if ! kill -0 "$(cat "$run/inference.pid")" 2>/dev/null; then
        echo "nordiq-inference exited; its log:"; cat "$run/inference.log"; exit 1
    fi
    sleep 0.1
done

echo "==> simulating the fleet (4 days of history backfilled, then live every 5 s)"
target/debug/nordiq-metrics --dev --inference-url "$url" simulate --backfill 4d \
    --listen "127.0.0.1:$sim_port" >"$run/feed.log" 2>&1 &
echo $! >"$run/feed.pid"
for _ in $(seq 1 600); do
    if grep -q "ready" "$run/feed.log" 2>/dev/null; then break; fi
    if ! kill -0 "$(cat "$run/feed.pid")" 2>/dev/null; then
        echo "nordiq-metrics stopped; its log:"; cat "$run/feed.log"; exit 1
    fi
    sleep 0.2
done
sleep 1

echo "==> starting nordiq-dashboard --dev on http://127.0.0.1:$dash_port"
target/debug/nordiq-dashboard --dev --listen "127.0.0.1:$dash_port" --inference-url "$url" \
    --simulator-url "http://127.0.0.1:$sim_port" >"$run/dashboard.log" 2>&1 &
echo $! >"$run/dashboard.pid"

ctl="target/debug/nordiqctl --dev --url $url"
$ctl status
echo
$ctl alerts
cat <<INFO

NordIQ is running on $url (state in ./.nordiq, key in ./.nordiq_key).
Where to look:
  http://127.0.0.1:$dash_port/         the dashboard (overview, heatmap, servers, alerts, models, history)
  $ctl status                 daemon health, warm-up, last refresh
  $ctl predictions            fleet risk table;  add a server name for its full forecast
  $ctl alerts                 active alerts and level changes
  curl -s -H "X-API-Key: \$(cat .nordiq_key)" $url/predictions/current
  curl -s -X POST -H "X-API-Key: \$(cat .nordiq_key)" 127.0.0.1:$sim_port/scenario/set?scenario=degrading
                                   push a fifth of the fleet towards trouble (or use the dashboard's buttons)
  curl -s -H "X-API-Key: \$(cat .nordiq_key)" $url/metrics      Prometheus exposition
  tail -f $run/inference.log       the daemon's log;  $run/feed.log: the simulator's
  kill -HUP \$(cat $run/inference.pid)   reload (as systemctl reload would)
Stop with: scripts/demo.sh stop
INFO
