#!/usr/bin/env bash
# Runs the NordIQ suite on its embedded development default: no root, no systemd, state in
# ./.nordiq, API key in ./.nordiq_key. Starts nordiq-inference, the simulated fleet
# (nordiq-metrics simulate: 20 servers, 4 days of history backfilled, then live samples
# every 5 s) and the dashboard, waits for the first forecasts, then trains a first TFT
# through the API (progress shown as it goes) and the daemon hot-reloads it; serving goes
# on the whole time. Shows where to look. `scripts/demo.sh stop` stops what it started.
# Ports: NORDIQ_DEMO_PORT (default 8000), NORDIQ_DASHBOARD_PORT (8050),
# NORDIQ_SIMULATOR_PORT (8010, the scenario API). NORDIQ_DEMO_EPOCHS (3): the first
# model's epochs; NORDIQ_DEMO_TRAIN=0 skips training. NORDIQ_DEMO_DIR (the repository):
# where ./.nordiq and ./.nordiq_key go.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
bin="$repo/target/debug"
workdir="${NORDIQ_DEMO_DIR:-$repo}"
port="${NORDIQ_DEMO_PORT:-8000}"
url="http://127.0.0.1:$port"
dash_port="${NORDIQ_DASHBOARD_PORT:-8050}"
sim_port="${NORDIQ_SIMULATOR_PORT:-8010}"
run="$workdir/.nordiq/run"

epochs="${NORDIQ_DEMO_EPOCHS:-3}"

# SIGTERM each process the demo started, wait for it (15 s), and say what had to be forced.
stop() {
    local name pid
    for name in dashboard feed inference; do
        [ -f "$run/$name.pid" ] || continue
        pid=$(cat "$run/$name.pid")
        rm -f "$run/$name.pid"
        kill -0 "$pid" 2>/dev/null || continue
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 150); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            kill -9 "$pid" 2>/dev/null || true
            echo "  $name (pid $pid) did not stop within 15 s of SIGTERM: killed"
        else
            echo "  $name (pid $pid) stopped"
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
cargo build --quiet -p nordiq-inference -p nordiq-ctl -p nordiq-dashboard -p nordiq-metrics -p nordiq-train
stop >/dev/null
mkdir -p "$run"
cd "$workdir"

echo "==> starting nordiq-inference --dev on $url"
"$bin"/nordiq-inference --dev --listen "127.0.0.1:$port" >"$run/inference.log" 2>&1 &
echo $! >"$run/inference.pid"
for _ in $(seq 1 100); do
    if "$bin"/nordiqctl --dev --url "$url" status >/dev/null 2>&1; then break; fi
    if ! kill -0 "$(cat "$run/inference.pid")" 2>/dev/null; then
        echo "nordiq-inference exited; its log:"; cat "$run/inference.log"; exit 1
    fi
    sleep 0.1
done

echo "==> simulating the fleet (4 days of history backfilled, then live every 5 s)"
"$bin"/nordiq-metrics --dev --inference-url "$url" simulate --backfill 4d \
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
"$bin"/nordiq-dashboard --dev --listen "127.0.0.1:$dash_port" --inference-url "$url" \
    --simulator-url "http://127.0.0.1:$sim_port" >"$run/dashboard.log" 2>&1 &
echo $! >"$run/dashboard.pid"

ctl="$bin/nordiqctl --dev --url $url"
$ctl status
echo
$ctl alerts

if [ "${NORDIQ_DEMO_TRAIN:-1}" != 0 ]; then
    echo
    echo "==> training a first model through the API ($epochs epochs; the baselines serve meanwhile)"
    echo "    POST /admin/trigger-training?epochs=$epochs&force=true, followed by nordiqctl train:"
    echo "    --force promotes it even if it does not beat the baseline (a demo's model has little"
    echo "    history); in production the promotion rules decide (docs/model-lifecycle.md)."
    $ctl train --epochs "$epochs" --force
    echo "==> waiting for the daemon to hot-reload the promoted model"
    for _ in $(seq 1 300); do
        if $ctl model-info 2>/dev/null | grep -q "^serving *tft_"; then break; fi
        sleep 0.2
    done
    $ctl model-info
    server=$($ctl predictions 2>/dev/null | awk 'NR > 1 && $1 ~ /^pp/ {print $1; exit}')
fi
server="${server:-ppweb001}"
cat <<INFO

NordIQ is running on $url (state in $workdir/.nordiq, key in $workdir/.nordiq_key).
Where to look:
  http://127.0.0.1:$dash_port/         the dashboard (overview, heatmap, servers, alerts, models, history)
  $ctl status                 daemon health, warm-up, last refresh
  $ctl predictions            fleet risk table;  add a server name for its full forecast
  $ctl alerts                 active alerts and level changes
  $ctl model-info             what serves (the TFT once trained), why, its held-out figures
  $ctl train status           the training job: progress, losses, the promotion decision
  curl -s -H "X-API-Key: \$(cat $workdir/.nordiq_key)" $url/explain/$server
                                   the model's own explanation for $server (variable weights, attention)
  http://127.0.0.1:$dash_port/#models   the Models view: what serves, jobs, train and cancel
  http://127.0.0.1:$dash_port/#server/$server   a server's forecasts with bands and the explanation
  curl -s -H "X-API-Key: \$(cat $workdir/.nordiq_key)" $url/predictions/current
  curl -s -X POST -H "X-API-Key: \$(cat $workdir/.nordiq_key)" 127.0.0.1:$sim_port/scenario/set?scenario=degrading
                                   push a fifth of the fleet towards trouble (or use the dashboard's buttons)
  curl -s -H "X-API-Key: \$(cat $workdir/.nordiq_key)" $url/metrics      Prometheus exposition
  tail -f $run/inference.log       the daemon's log;  $run/feed.log: the simulator's
  kill -HUP \$(cat $run/inference.pid)   reload (as systemctl reload would)
Stop with: scripts/demo.sh stop
INFO
