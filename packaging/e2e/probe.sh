#!/bin/bash
# Runs as root inside the booted container (packaging/e2e-nspawn.sh): installs the .deb
# and checks it as an operator would. One line per check in /e2e/results ("ok"/"FAIL"),
# details in /e2e/probe.log; "DONE" last.
set -u
R=/e2e/results
L=/e2e/probe.log
: >"$R"
: >"$L"
log() { echo "--- $*" >>"$L"; }
check() {
    local name=$1
    shift
    log "$name: $*"
    if "$@" >>"$L" 2>&1; then echo "ok   $name" >>"$R"; else echo "FAIL $name" >>"$R"; fi
}
# wait_for SECONDS COMMAND…: retries every 0.2 s.
wait_for() {
    local secs=$1
    shift
    local i
    for i in $(seq 1 $((secs * 5))); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    "$@"
}
api() { curl -sf --max-time 30 -H "X-API-Key: $(cat /etc/nordiq/api-key)" "http://127.0.0.1:8000$1"; }
serving() { api /admin/model-info | jq -r .serving; }
export -f api serving

# The image's policy-rc.d forbids maintainer scripts to start services: an operator's
# machine has none.
rm -f /usr/sbin/policy-rc.d
export DEBIAN_FRONTEND=noninteractive

check "dpkg -i installs the package" dpkg -i /e2e/nordiq.deb
check "the API key is generated, 0640 root:nordiq" \
    bash -c '[ "$(stat -c %a:%U:%G /etc/nordiq/api-key)" = 640:root:nordiq ]'
check "nordiq.target, both sockets and the retrain timer are active" \
    systemctl is-active nordiq.target nordiq-inference.socket nordiq-dashboard.socket nordiq-retrain.timer
check "systemctl list-timers shows nordiq-retrain.timer" \
    bash -c 'systemctl list-timers --all --no-pager | grep -q nordiq-retrain.timer'
check "nordiq-metrics.service is installed, not enabled" \
    bash -c '[ "$(systemctl is-enabled nordiq-metrics.service)" = disabled ]'
check "nordiq-inference.service waits for its first connection" \
    bash -c '[ "$(systemctl is-active nordiq-inference.service)" = inactive ]'
check "the socket answers on 8000 and starts the daemon" \
    curl -sf --max-time 120 http://127.0.0.1:8000/health
check "READY: nordiq-inference.service is active (running)" \
    bash -c '[ "$(systemctl show -P ActiveState nordiq-inference.service)/$(systemctl show -P SubState nordiq-inference.service)" = active/running ]'
check "systemctl status shows the STATUS= line" \
    bash -c 'systemctl status nordiq-inference.service --no-pager | grep -E "Status: \"model baseline:"'
check "journalctl -u nordiq-inference has structured entries (MODEL=…)" \
    bash -c 'journalctl -u nordiq-inference.service --no-pager -o cat MODEL=baseline:auto | grep -q ready'

# History for training: the simulator's backfill, as the nordiq user, straight into the
# buffer (4 days: readiness wants 3) and through the daemon (its 8-day window).
check "nordiq-metrics simulate --backfill 12d --backfill-only (as nordiq)" \
    runuser -u nordiq -- nordiq-metrics --config /etc/nordiq/nordiq.toml simulate --backfill 12d --backfill-only
check "the buffer is ready to train" bash -c 'api /admin/training-stats | jq -e .buffer.readiness.ready'

# The metrics unit, with the default source (the simulator).
check "nordiq-metrics.service starts (Type=notify) and delivers" systemctl start nordiq-metrics.service
check "nordiq-metrics' STATUS= names its source and delivery" \
    wait_for 20 bash -c 'systemctl show -P StatusText nordiq-metrics.service | grep -E "^simulator: 20 servers.*delivered [1-9]"'

# The watchdog (WatchdogSec shortened to 5 s for the test by a drop-in).
mkdir -p /etc/systemd/system/nordiq-inference.service.d
printf '[Service]\nWatchdogSec=5\n' >/etc/systemd/system/nordiq-inference.service.d/e2e.conf
systemctl daemon-reload
systemctl restart nordiq-inference.service
wait_for 60 curl -sf http://127.0.0.1:8000/health >/dev/null
pid=$(systemctl show -P MainPID nordiq-inference.service)
restarts=$(systemctl show -P NRestarts nordiq-inference.service)
log "watchdog: SIGSTOP to $pid (NRestarts $restarts)"
kill -STOP "$pid"
check "a hung daemon (SIGSTOP) is killed by the watchdog and restarted" \
    wait_for 60 bash -c "[ \"\$(systemctl show -P NRestarts nordiq-inference.service)\" -gt $restarts ] && [ \"\$(systemctl show -P MainPID nordiq-inference.service)\" != $pid ] && curl -sf http://127.0.0.1:8000/health"
check "the journal says why (watchdog timeout)" \
    bash -c 'journalctl -u nordiq-inference.service --no-pager | grep -qi "watchdog timeout"'
rm -rf /etc/systemd/system/nordiq-inference.service.d
systemctl daemon-reload

# The retrain unit, as the timer would start it (one short epoch for the test, by a drop-in;
# forced, since one epoch need not beat the best baseline, which promotion otherwise requires).
mkdir -p /etc/systemd/system/nordiq-retrain.service.d
printf '[Service]\nExecStart=\nExecStart=/usr/bin/nordiq-train --job next --trigger timer --skip-unready --reload systemd --epochs 1 --max-windows 64 --force\n' \
    >/etc/systemd/system/nordiq-retrain.service.d/e2e.conf
systemctl daemon-reload
check "systemctl start nordiq-retrain.service trains, promotes and reloads" systemctl start nordiq-retrain.service
check "the trained model serves" wait_for 60 bash -c '[[ "$(api /admin/model-info | jq -r .serving)" == tft_* ]]'
first=$(serving)
log "serving $first"

# systemctl reload to a newly promoted model, under load: no request fails.
check "a second model is trained (not promoted)" \
    runuser -u nordiq -- nordiq-train --config /etc/nordiq/nordiq.toml --epochs 1 --max-windows 64 --no-promote --reload none
second=$(ls /var/lib/nordiq/models | grep '^tft_' | grep -v "$first" | sort | tail -1)
log "second model $second"
( fails=0; n=0
  while [ ! -e /tmp/stop-load ]; do
      n=$((n + 1)); api /predictions/current >/dev/null || fails=$((fails + 1)); sleep 0.05
  done; echo "$n $fails" >/tmp/load-result ) &
sleep 1
# Promotion as nordiqctl does it: a temp link renamed over `current`, then the reload.
runuser -u nordiq -- bash -c "cd /var/lib/nordiq/models && ln -sfn '$second' .current-e2e && mv -T .current-e2e current"
check "systemctl reload nordiq-inference" systemctl reload nordiq-inference.service
check "the newly promoted model serves" wait_for 30 bash -c "[ \"\$(api /admin/model-info | jq -r .serving)\" = '$second' ]"
sleep 1
touch /tmp/stop-load
wait
read -r requests failures </tmp/load-result
log "load during the reload: $requests requests, $failures failed"
check "no request failed during the reload ($requests requests)" bash -c "[ '$failures' = 0 ] && [ '$requests' -gt 10 ]"

check "nordiqctl status reports every unit and the daemon (exit 0)" bash -c '
    out=$(nordiqctl --config /etc/nordiq/nordiq.toml status) || exit 1
    echo "$out"
    for u in nordiq-inference.socket nordiq-inference.service nordiq-metrics.service nordiq-retrain.timer; do
        grep -q "$u" <<<"$out" || { echo "$u missing"; exit 1; }
    done
    grep -q "tft_" <<<"$out"'
check "systemctl stop nordiq.target" systemctl stop nordiq.target
# systemctl waits for the target's own stop job; the units it takes down (PartOf=) finish
# their graceful stop (drain, roll the log into Parquet) right after.
check "stopping the target stops every NordIQ unit, none failed" wait_for 60 bash -c '
    for u in nordiq-inference.service nordiq-inference.socket nordiq-dashboard.socket nordiq-metrics.service nordiq-retrain.timer; do
        [ "$(systemctl is-active "$u")" = inactive ] || { echo "$u is $(systemctl is-active "$u")"; exit 1; }
    done
    [ "$(systemctl show -P Result nordiq-inference.service)" = success ] && [ "$(systemctl show -P Result nordiq-metrics.service)" = success ]'

check "dpkg --purge nordiq" dpkg --purge nordiq
check "purge leaves nothing behind" bash -c '
    for p in /var/lib/nordiq /etc/nordiq /usr/lib/nordiq /usr/bin/nordiq-inference /lib/systemd/system/nordiq-inference.service \
             /etc/systemd/system/nordiq.target.wants /etc/systemd/system/sockets.target.wants/nordiq-inference.socket; do
        [ ! -e "$p" ] || { echo "$p is left"; exit 1; }
    done'
echo "DONE" >>"$R"
