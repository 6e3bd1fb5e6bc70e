#!/usr/bin/env bash
# The end-to-end test in a real systemd: boots systemd 252 as PID 1 in systemd-nspawn (this
# machine's root, read-only, with a volatile overlay; loopback-only network), installs the
# .deb there and exercises it the way an operator would (packaging/e2e/probe.sh: socket
# activation, READY, STATUS=, the journal, the watchdog, reload to a newly promoted model
# under load, the retrain unit on simulator backfill, stop, purge). Run by scripts/test.sh
# after check-deb.sh; needs root (bind mounts, nspawn) and systemd-container.
# Usage: packaging/e2e-nspawn.sh [path/to/nordiq.deb]
set -euo pipefail
cd "$(dirname "$0")/.."
deb="${1:-$(ls -t target/debian/nordiq_*_amd64.deb 2>/dev/null | head -1)}"
[ -f "$deb" ] || { echo "e2e: no .deb (run packaging/build-deb.sh first)" >&2; exit 1; }
# Bind mounts and systemd-nspawn need root.
[ "$(id -u)" -eq 0 ] || exec sudo "$0" "$deb"
command -v systemd-nspawn >/dev/null || {
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends systemd-container >/dev/null; }

work=$(mktemp -d /tmp/nordiq-e2e.XXXXXX)
root="$work/root"
mkdir -p "$root" "$work/units" "$work/share"
cleanup() {
    umount "$root" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
# The host's root, read-only and non-recursive: the container writes only to its overlay.
mount --bind / "$root"
mount -o remount,bind,ro "$root"

# /etc/systemd/system of the container: only the probe (the host's enabled services would
# otherwise start at boot), writable so dpkg can enable NordIQ's units.
cat >"$work/units/nordiq-e2e.target" <<'UNIT'
[Unit]
Description=NordIQ end-to-end probe
Requires=nordiq-e2e.service
Wants=dbus.socket
After=nordiq-e2e.service
UNIT
cat >"$work/units/nordiq-e2e.service" <<'UNIT'
[Unit]
Description=NordIQ end-to-end probe
After=basic.target systemd-journald.service
[Service]
Type=oneshot
ExecStart=/bin/bash /e2e/probe.sh
ExecStopPost=/bin/systemctl poweroff --no-block
TimeoutStartSec=900
StandardOutput=journal+console
UNIT
cp packaging/e2e/probe.sh "$work/share/probe.sh"
cp "$deb" "$work/share/nordiq.deb"

echo "==> e2e: booting systemd in systemd-nspawn with $(basename "$deb")"
started=$(date +%s)
timeout 1200 systemd-nspawn -D "$root" --volatile=overlay --private-network --register=no \
    --keep-unit --link-journal=no --bind="$work/units:/etc/systemd/system" \
    --bind="$work/share:/e2e" -b -- systemd.unit=nordiq-e2e.target \
    >"$work/share/console.log" 2>&1 || true
mkdir -p target
cp "$work/share/console.log" target/e2e-console.log
[ -f "$work/share/probe.log" ] && cp "$work/share/probe.log" target/e2e-probe.log
if [ ! -s "$work/share/results" ]; then
    echo "e2e: the probe left no results; the container's console:" >&2
    tail -40 "$work/share/console.log" >&2
    exit 1
fi
cp "$work/share/results" target/e2e-results.txt
cat "$work/share/results"
echo "e2e: $(( $(date +%s) - started )) s; log in target/e2e-probe.log"
if grep -q '^FAIL' "$work/share/results" || ! grep -q '^DONE' "$work/share/results"; then
    echo "e2e: failed (details in target/e2e-probe.log)" >&2
    exit 1
fi
