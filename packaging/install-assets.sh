#!/usr/bin/env bash
# The one list of what a NordIQ package installs, used by the .deb (debian/rules) and the
# .rpm (packaging/build-rpm.sh) alike. Installs into STAGE (the package root) and prints
# each installed path, relative to STAGE, on stdout (the .rpm's file list is made from it).
#   packaging/install-assets.sh STAGE deb|rpm
# Differences between the two are only where the distributions differ: the unit directory
# (/lib vs /usr/lib), and the preset, sysusers and tmpfiles files, which debhelper installs
# from debian/ itself on Debian (those are links to the same files under packaging/).
set -euo pipefail
cd "$(dirname "$0")/.."
stage=${1:?usage: install-assets.sh STAGE deb|rpm}
flavour=${2:?usage: install-assets.sh STAGE deb|rpm}
case $flavour in
    deb) unit_dir=lib/systemd/system ;;
    rpm) unit_dir=usr/lib/systemd/system ;;
    *) echo "install-assets: flavour must be deb or rpm, not '$flavour'" >&2; exit 64 ;;
esac
libtorch="$(readlink -f .libtorch)/lib"

put() { # MODE SOURCE DEST
    install -D -m"$1" "$2" "$stage/$3"
    echo "$3"
}

for b in nordiq-inference nordiq-dashboard nordiq-metrics nordiq-train nordiqctl; do
    put 755 "target/release/$b" "usr/bin/$b"
done
# The libtorch runtime the binaries find through their RUNPATH (/usr/lib/nordiq).
for l in libtorch_cpu.so libc10.so libgomp.so.1 libcudart.so.13 libcupti.so.13; do
    put 644 "$libtorch/$l" "usr/lib/nordiq/$l"
done
put 644 etc/nordiq/nordiq.toml etc/nordiq/nordiq.toml
for u in systemd/*; do put 644 "$u" "$unit_dir/$(basename "$u")"; done
put 644 packaging/polkit/50-nordiq.rules usr/share/polkit-1/rules.d/50-nordiq.rules
for d in README.md docs/*.md; do put 644 "$d" "usr/share/doc/nordiq/$(basename "$d")"; done
# Files to start from: the Grafana dashboard and the Prometheus rule file (docs/notifications.md).
for f in share/*; do put 644 "$f" "usr/share/nordiq/$(basename "$f")"; done
if [ "$flavour" = rpm ]; then
    put 644 packaging/nordiq.preset usr/lib/systemd/system-preset/50-nordiq.preset
    put 644 packaging/nordiq.sysusers usr/lib/sysusers.d/nordiq.conf
    put 644 packaging/nordiq.tmpfiles usr/lib/tmpfiles.d/nordiq.conf
fi
