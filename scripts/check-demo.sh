#!/usr/bin/env bash
# The README's first command, end to end, as a newcomer runs it: scripts/demo.sh in a fresh
# directory (free ports), then checks that it ended with a trained TFT serving (model-info,
# an explanation, forecasts all through), and that `scripts/demo.sh stop` stops everything
# it started. Run by scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(mktemp -d)
export NORDIQ_DEMO_DIR="$dir" NORDIQ_DEMO_PORT=18700 NORDIQ_DASHBOARD_PORT=18750 NORDIQ_SIMULATOR_PORT=18710
cleanup() { scripts/demo.sh stop >/dev/null 2>&1 || true; rm -rf "$dir"; }
trap cleanup EXIT
fail() { echo "check-demo: $*" >&2; echo "--- demo output:" >&2; cat "$dir/demo.out" >&2; exit 1; }

# Serving goes on the whole time: poll forecasts while the demo runs (training included).
(
    while [ ! -s "$dir/.nordiq_key" ]; do sleep 0.2; done
    while [ ! -e "$dir/poll.stop" ]; do
        curl -s -o /dev/null -w '%{http_code}\n' -H "X-API-Key: $(cat "$dir/.nordiq_key")" \
            "http://127.0.0.1:$NORDIQ_DEMO_PORT/predictions/current" >>"$dir/poll.codes" || true
        sleep 0.25
    done
) &
poller=$!
start=$(date +%s)
scripts/demo.sh >"$dir/demo.out" 2>&1 || fail "scripts/demo.sh failed"
echo "check-demo: scripts/demo.sh took $(( $(date +%s) - start )) s"
touch "$dir/poll.stop"
wait "$poller"
# From the first answer on, every poll was answered 200.
codes=$(sed -n '/^200$/,$p' "$dir/poll.codes")
answered=$(grep -c '^200$' <<<"$codes" || true)
[ "$answered" -gt 10 ] || fail "too few forecasts polled while the demo ran ($answered)"
if grep -qv '^200$' <<<"$codes"; then fail "a forecast poll failed while the demo ran: $(sort "$dir/poll.codes" | uniq -c)"; fi
echo "check-demo: $answered forecast requests during the demo, all answered 200"
NORDIQ_API_KEY=$(cat "$dir/.nordiq_key")
info=$(cd "$dir" && "$OLDPWD/target/debug/nordiqctl" --dev --url "http://127.0.0.1:$NORDIQ_DEMO_PORT" model-info --json) ||
    fail "model-info failed"
jq -e '.serving | startswith("tft_")' >/dev/null <<<"$info" || fail "no TFT serves: $info"
jq -e '.reloads_ok >= 1 and .loaded == true' >/dev/null <<<"$info" || fail "no hot reload: $info"
grep -q "where to look\|Where to look" "$dir/demo.out" || fail "the demo did not say where to look"
grep -q "100 % completed" "$dir/demo.out" || fail "the demo did not show the job's progress"
server=$(curl -s -H "X-API-Key: $NORDIQ_API_KEY" "http://127.0.0.1:$NORDIQ_DEMO_PORT/predictions/current" |
    jq -r '.servers | keys[0]')
[ -n "$server" ] && [ "$server" != null ] || fail "no forecast server in /predictions/current"
curl -sf -H "X-API-Key: $NORDIQ_API_KEY" "http://127.0.0.1:$NORDIQ_DEMO_PORT/explain/$server" |
    jq -e '.model_id | startswith("tft_")' >/dev/null || fail "no explanation from the model for $server"
echo "check-demo: a TFT serves ($(jq -r .serving <<<"$info")), explains $server"

stopped=$(scripts/demo.sh stop)
echo "$stopped"
for name in dashboard feed inference; do
    grep -q "$name (pid [0-9]*) stopped" <<<"$stopped" || fail "demo.sh stop did not stop $name cleanly: $stopped"
done
for p in $NORDIQ_DEMO_PORT $NORDIQ_DASHBOARD_PORT $NORDIQ_SIMULATOR_PORT; do
    if curl -s -o /dev/null "http://127.0.0.1:$p/health"; then fail "something still answers on $p"; fi
done
echo "check-demo: ok"
