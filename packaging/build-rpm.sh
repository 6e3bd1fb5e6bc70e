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
stage=$(mktemp -d)
top=$(mktemp -d)
trap 'rm -rf "$stage" "$top"' EXIT
# The asset list is shared with the .deb; the spec's %files takes the paths it printed,
# less the ones it declares itself with attributes (the config file).
packaging/install-assets.sh "$stage" rpm | grep -v '^etc/nordiq/' |
    sed -e 's|^|/|' -e 's|^/usr/share/doc/|%doc /usr/share/doc/|' >"$top/files"
install -d "$stage/var/lib/nordiq"
rpmbuild -bb --quiet --define "_topdir $top" --define "stage_dir $stage" --define "file_list $top/files" \
    --define "nordiq_version $version" rpm/nordiq.spec >target/rpm-build.log 2>&1 || {
    tail -30 target/rpm-build.log; exit 1; }
mkdir -p target/rpm
cp "$top"/RPMS/x86_64/nordiq-*.rpm target/rpm/
rpm=$(ls -t target/rpm/nordiq-*.rpm | head -1)
echo "built $rpm ($(du -h "$rpm" | cut -f1))"
