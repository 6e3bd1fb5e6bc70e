#!/usr/bin/env bash
# Builds the .deb and checks it without installing it: lintian clean apart from the
# explained tags, the expected files, conffiles, RUNPATH /usr/lib/nordiq, maintainer scripts
# that parse, and binaries that run on the libraries the package ships.
# (Installing it in a booted systemd is the end-to-end test's job: not built yet.)
set -euo pipefail
cd "$(dirname "$0")/.."
packaging/build-deb.sh >target/debian-check.log 2>&1 || { cat target/debian-check.log; exit 1; }
deb=$(ls -t target/debian/nordiq_*_amd64.deb | head -1)
fail() { echo "check-deb: $*" >&2; exit 1; }

tags=$(grep -E '^[EW]: ' target/debian-check.log || true)
[ -z "$tags" ] || fail "lintian reports (explain them in packaging/lintian-explained or fix them):
$tags"

contents=$(dpkg-deb -c "$deb" | awk '{print $6}')
for f in ./usr/bin/nordiq-inference ./usr/bin/nordiq-dashboard ./usr/bin/nordiq-train ./usr/bin/nordiqctl \
    ./usr/bin/nordiq-metrics ./lib/systemd/system/nordiq-metrics.service ./usr/share/doc/nordiq/metrics.md \
    ./usr/lib/nordiq/libtorch_cpu.so ./usr/lib/nordiq/libc10.so ./usr/lib/nordiq/libgomp.so.1 \
    ./usr/lib/nordiq/libcudart.so.13 ./usr/lib/nordiq/libcupti.so.13 ./etc/nordiq/nordiq.toml \
    ./lib/systemd/system/nordiq.target ./lib/systemd/system/nordiq-inference.socket \
    ./lib/systemd/system/nordiq-inference.service ./lib/systemd/system/nordiq-dashboard.socket \
    ./lib/systemd/system/nordiq-dashboard.service ./lib/systemd/system/nordiq-retrain.service \
    ./lib/systemd/system/nordiq-retrain.timer ./usr/lib/sysusers.d/nordiq.conf \
    ./usr/lib/tmpfiles.d/nordiq.conf ./usr/share/polkit-1/rules.d/50-nordiq.rules \
    ./usr/share/doc/nordiq/model-lifecycle.md ./usr/share/nordiq/grafana-dashboard.json \
    ./usr/share/nordiq/prometheus-rules.yml ./usr/share/nordiq/nats-cluster.conf \
    ./usr/share/nordiq/nordiq-nats.service ./usr/share/doc/nordiq/cluster.md; do
    grep -qxF "$f" <<<"$contents" || fail "$f is missing from $deb"
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
dpkg-deb -e "$deb" "$work/control"
grep -qx /etc/nordiq/nordiq.toml "$work/control/conffiles" || fail "nordiq.toml is not a conffile"
grep -q '^Recommends:.*nats-server' "$work/control/control" || fail "the package does not recommend nats-server"
for s in postinst postrm prerm preinst; do
    [ ! -e "$work/control/$s" ] || sh -n "$work/control/$s" || fail "$s does not parse"
done
grep -q 'keygen --path /etc/nordiq/api-key --group nordiq' "$work/control/postinst" || fail "postinst makes no key"
grep -q "enable 'nordiq-inference.socket'" "$work/control/postinst" || fail "the inference socket is not enabled"
grep -q "enable 'nordiq-retrain.timer'" "$work/control/postinst" || fail "the timer is not enabled"
! grep -q "enable 'nordiq-inference.service'" "$work/control/postinst" || fail "a socket-activated service is enabled"
# debhelper re-enables it on upgrade only where the admin had enabled it (was-enabled).
grep -B2 "deb-systemd-helper enable 'nordiq-metrics.service'" "$work/control/postinst" \
    | grep -q "was-enabled 'nordiq-metrics.service'" || fail "the metric source is enabled before its source is chosen"
grep -q 'rm -rf /var/lib/nordiq' "$work/control/postrm" || fail "purge keeps the state"

dpkg-deb -x "$deb" "$work/root"
for b in nordiq-inference nordiq-train nordiqctl; do
    readelf -d "$work/root/usr/bin/$b" | grep -q 'RUNPATH.*\[/usr/lib/nordiq\]' || fail "$b has no RUNPATH /usr/lib/nordiq"
    env -i LD_LIBRARY_PATH="$work/root/usr/lib/nordiq" "$work/root/usr/bin/$b" --version >/dev/null \
        || fail "$b does not run on the shipped libraries"
done
env -i "$work/root/usr/bin/nordiq-dashboard" --version >/dev/null || fail "nordiq-dashboard does not run"
env -i "$work/root/usr/bin/nordiq-metrics" --version >/dev/null || fail "nordiq-metrics does not run"
echo "check-deb: $(basename "$deb") ($(du -h "$deb" | cut -f1)) is lintian-clean (explained tags aside) and complete"
