#!/usr/bin/env bash
# Builds target/debian/nordiq_<version>_amd64.deb with debhelper (release binaries with
# RUNPATH /usr/lib/nordiq, the libtorch runtime, units, config, polkit rule) and runs
# lintian on it. Needs: debhelper, lintian (apt), the Rust toolchain, scripts/libtorch.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/libtorch.sh >/dev/null
need=()
command -v dh >/dev/null 2>&1 || need+=(debhelper)
command -v lintian >/dev/null 2>&1 || need+=(lintian)
if ((${#need[@]})); then
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# A stamp left by an earlier build makes dh skip the build step and package old binaries.
rm -f debian/debhelper-build-stamp
# -d: the Rust toolchain comes from rustup, not from a Debian build dependency.
dpkg-buildpackage -b -us -uc -d --no-pre-clean >target/debian-build.log 2>&1 || {
    tail -40 target/debian-build.log; exit 1; }
mkdir -p target/debian
mv ../nordiq_*_amd64.deb ../nordiq_*_amd64.buildinfo ../nordiq_*_amd64.changes target/debian/ 2>/dev/null || true
deb=$(ls -t target/debian/nordiq_*_amd64.deb | head -1)
echo "built $deb ($(du -h "$deb" | cut -f1))"
lintian --suppress-tags-from-file packaging/lintian-explained "$deb" || true
