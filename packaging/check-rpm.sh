#!/usr/bin/env bash
# Builds the .rpm (packaging/build-rpm.sh) and checks it as far as Debian's rpm tools can:
# contents, the conffile, requirements (no system libtorch), every scriptlet parses,
# rpmlint (remaining findings explained in packaging/rpmlint-explained), and the payload
# installed into a scratch rpm database, where the binaries run on the shipped libraries.
# What cannot be checked here (the scriptlets running on an RPM-based system) is listed in
# docs/packaging.md.
set -euo pipefail
cd "$(dirname "$0")/.."
packaging/build-rpm.sh >target/rpm-check.log 2>&1 || { cat target/rpm-check.log; exit 1; }
rpm=$(ls -t target/rpm/nordiq-*.rpm | head -1)
fail() { echo "check-rpm: $*" >&2; exit 1; }

contents=$(rpm -qpl "$rpm")
for f in /usr/bin/nordiq-inference /usr/bin/nordiq-dashboard /usr/bin/nordiq-metrics /usr/bin/nordiq-train \
    /usr/bin/nordiqctl /usr/lib/nordiq/libtorch_cpu.so /usr/lib/nordiq/libc10.so /usr/lib/nordiq/libgomp.so.1 \
    /usr/lib/nordiq/libcudart.so.13 /usr/lib/nordiq/libcupti.so.13 /etc/nordiq/nordiq.toml \
    /usr/lib/systemd/system/nordiq.target /usr/lib/systemd/system/nordiq-inference.socket \
    /usr/lib/systemd/system/nordiq-inference.service /usr/lib/systemd/system/nordiq-dashboard.socket \
    /usr/lib/systemd/system/nordiq-dashboard.service /usr/lib/systemd/system/nordiq-metrics.service \
    /usr/lib/systemd/system/nordiq-retrain.service /usr/lib/systemd/system/nordiq-retrain.timer \
    /usr/lib/systemd/system-preset/50-nordiq.preset /usr/lib/sysusers.d/nordiq.conf \
    /usr/lib/tmpfiles.d/nordiq.conf /usr/share/polkit-1/rules.d/50-nordiq.rules /usr/share/doc/nordiq/metrics.md \
    /usr/share/nordiq/grafana-dashboard.json /usr/share/nordiq/prometheus-rules.yml \
    /usr/share/nordiq/nats-cluster.conf /usr/share/nordiq/nordiq-nats.service /usr/share/doc/nordiq/cluster.md; do
    grep -qxF "$f" <<<"$contents" || fail "$f is missing from $rpm"
done
rpm -qp --recommends "$rpm" | grep -q '^nats-server' || fail "the package does not recommend nats-server"
rpm -qp --configfiles "$rpm" | grep -qx /etc/nordiq/nordiq.toml || fail "nordiq.toml is not a config file"
rpm -qp --qf '[%{FILEFLAGS:fflags} %{FILENAMES}\n]' "$rpm" | grep -q '^cn /etc/nordiq/nordiq.toml$' \
    || fail "nordiq.toml is not %config(noreplace)"
rpm -qp --requires "$rpm" | grep -qi torch && fail "the package requires a system libtorch"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for s in PREIN POSTIN PREUN POSTUN; do
    rpm -qp --qf "%{$s}\n" "$rpm" >"$work/$s"
    grep -qvx '(none)' "$work/$s" || fail "no $s scriptlet"
    sh -n "$work/$s" || fail "the $s scriptlet does not parse"
done
grep -q 'keygen --path /etc/nordiq/api-key --group nordiq' "$work/POSTIN" || fail "%post makes no key"
grep -q 'preset nordiq.target nordiq-inference.socket nordiq-dashboard.socket nordiq-retrain.timer' "$work/POSTIN" \
    || fail "%post does not enable the target, sockets and timer"
grep -q 'systemd-sysusers' "$work/PREIN" || fail "%pre creates no user"
grep -q '^enable nordiq-inference.socket$' packaging/nordiq.preset || fail "the preset does not enable the socket"
grep -q '^disable nordiq-metrics.service$' packaging/nordiq.preset || fail "the preset enables the metric source"

# rpmlint: errors fail the check unless packaging/rpmlint-explained names them.
rpmlint "$rpm" >"$work/rpmlint" 2>&1 || true
grep -E '^nordiq\.[^:]*: [EW]: ' "$work/rpmlint" | sed -E 's/^[^:]*: ([EW]): ([^ ]+).*/\1 \2/' | sort -u >"$work/tags"
unexplained=$(grep -vxF -f <(grep -v '^#' packaging/rpmlint-explained | awk 'NF {print $1" "$2}') "$work/tags" || true)
[ -z "$unexplained" ] || { cat "$work/rpmlint" >&2; fail "rpmlint findings not explained in packaging/rpmlint-explained: $unexplained"; }

# The payload, installed into a scratch root (no scriptlets: they need an RPM-based
# system's systemd and user database).
rpm --root "$work/root" --initdb
rpm --root "$work/root" -i --nodeps --noscripts --nosignature "$rpm" 2>"$work/install.log" \
    || { cat "$work/install.log" >&2; fail "the payload does not install"; }
for b in nordiq-inference nordiq-train nordiqctl; do
    readelf -d "$work/root/usr/bin/$b" | grep -q 'RUNPATH.*\[/usr/lib/nordiq\]' || fail "$b has no RUNPATH /usr/lib/nordiq"
    env -i LD_LIBRARY_PATH="$work/root/usr/lib/nordiq" "$work/root/usr/bin/$b" --version >/dev/null \
        || fail "$b does not run on the shipped libraries"
done
for b in nordiq-dashboard nordiq-metrics; do
    env -i "$work/root/usr/bin/$b" --version >/dev/null || fail "$b does not run"
done
# The glibc the spec requires covers every symbol version the binaries and libraries use.
required=$(rpm -qp --requires "$rpm" | sed -n 's/^glibc >= //p')
newest=$(for f in "$work"/root/usr/bin/* "$work"/root/usr/lib/nordiq/*; do objdump -T "$f"; done \
    | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -1)
[ "$(printf '%s\n%s\n' "$newest" "$required" | sort -V | tail -1)" = "$required" ] \
    || fail "the files need glibc $newest, the spec requires only $required"
rpm --root "$work/root" -V --nodeps --nouser --nogroup nordiq >"$work/verify" 2>&1 || { cat "$work/verify" >&2; fail "rpm -V finds the installed files changed"; }
echo "check-rpm: $(basename "$rpm") ($(du -h "$rpm" | cut -f1)): contents, scriptlets, rpmlint (explained findings aside), payload"
