#!/usr/bin/env bash
# Builds target/rpm/nordiq-<version>-1.x86_64.rpm from the release binaries the .deb build
# made (RUNPATH /usr/lib/nordiq; run packaging/build-deb.sh first), with rpm/nordiq.spec.
# Needs rpmbuild (Debian's `rpm` package).
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
# The binaries that link libtorch carry its RUNPATH; the dashboard and nordiq-metrics link none.
for b in nordiq-inference nordiq-train nordiqctl; do
    readelf -d "target/release/$b" 2>/dev/null | grep -q 'RUNPATH.*\[/usr/lib/nordiq\]' || {
        echo "build-rpm: target/release/$b is missing or not built for packages (run packaging/build-deb.sh)" >&2
        exit 1
    }
done
libtorch="$(readlink -f .libtorch)/lib"
stage=$(mktemp -d)
top=$(mktemp -d)
trap 'rm -rf "$stage" "$top"' EXIT
for b in nordiq-inference nordiq-dashboard nordiq-metrics nordiq-train nordiqctl; do
    install -D -m755 "target/release/$b" "$stage/usr/bin/$b"
done
for l in libtorch_cpu.so libc10.so libgomp.so.1 libcudart.so.13 libcupti.so.13; do
    install -D -m644 "$libtorch/$l" "$stage/usr/lib/nordiq/$l"
done
install -D -m644 etc/nordiq/nordiq.toml "$stage/etc/nordiq/nordiq.toml"
for u in systemd/*; do install -D -m644 "$u" "$stage/usr/lib/systemd/system/$(basename "$u")"; done
install -D -m644 packaging/nordiq.preset "$stage/usr/lib/systemd/system-preset/50-nordiq.preset"
install -D -m644 packaging/nordiq.sysusers "$stage/usr/lib/sysusers.d/nordiq.conf"
install -D -m644 packaging/nordiq.tmpfiles "$stage/usr/lib/tmpfiles.d/nordiq.conf"
install -D -m644 packaging/polkit/50-nordiq.rules "$stage/usr/share/polkit-1/rules.d/50-nordiq.rules"
install -d "$stage/usr/share/doc/nordiq" "$stage/var/lib/nordiq"
install -m644 README.md docs/*.md "$stage/usr/share/doc/nordiq/"
rpmbuild -bb --quiet --define "_topdir $top" --define "stage_dir $stage" \
    --define "nordiq_version $version" rpm/nordiq.spec >target/rpm-build.log 2>&1 || {
    tail -30 target/rpm-build.log; exit 1; }
mkdir -p target/rpm
cp "$top"/RPMS/x86_64/nordiq-*.rpm target/rpm/
rpm=$(ls -t target/rpm/nordiq-*.rpm | head -1)
echo "built $rpm ($(du -h "$rpm" | cut -f1))"
