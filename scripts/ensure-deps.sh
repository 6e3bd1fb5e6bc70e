#!/usr/bin/env bash
# Installs what building and testing NordIQ needs on Debian 12, once; quiet when all is there.
# Used by scripts/demo.sh and scripts/test.sh. Needs root or sudo for apt-get.
set -euo pipefail

need_apt=()
command -v systemd-socket-activate >/dev/null 2>&1 || need_apt+=(systemd)
command -v cc >/dev/null 2>&1 || need_apt+=(gcc libc6-dev)
command -v pkg-config >/dev/null 2>&1 || need_apt+=(pkg-config)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need_apt+=(python3-venv)
# The tests also drive the dashboard in a real headless browser.
if [ "${1:-}" = "test" ]; then
    command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
    command -v node >/dev/null 2>&1 || need_apt+=(nodejs)
    command -v npm >/dev/null 2>&1 || need_apt+=(npm)
    # The Prometheus test starts Debian's real Prometheus.
    command -v prometheus >/dev/null 2>&1 || need_apt+=(prometheus)
    command -v prometheus-node-exporter >/dev/null 2>&1 || need_apt+=(prometheus-node-exporter)
    # The notification test posts alerts to Debian's real Alertmanager.
    command -v prometheus-alertmanager >/dev/null 2>&1 || need_apt+=(prometheus-alertmanager)
    # The cluster test runs three real NATS servers (JetStream) in network namespaces.
    command -v nats-server >/dev/null 2>&1 || need_apt+=(nats-server)
    command -v ip >/dev/null 2>&1 || need_apt+=(iproute2)
    # The end-to-end test boots systemd in a container and drives it with curl and jq.
    command -v systemd-nspawn >/dev/null 2>&1 || need_apt+=(systemd-container)
    command -v curl >/dev/null 2>&1 || need_apt+=(curl)
    command -v jq >/dev/null 2>&1 || need_apt+=(jq)
    # In the container the retrain unit reloads the daemon as user nordiq: D-Bus and polkit.
    command -v dbus-daemon >/dev/null 2>&1 || need_apt+=(dbus)
    [ -x /usr/lib/polkit-1/polkitd ] || need_apt+=(polkitd)
    # The .rpm is built and checked with rpm's own tools.
    command -v rpmbuild >/dev/null 2>&1 || need_apt+=(rpm)
    command -v rpmlint >/dev/null 2>&1 || need_apt+=(rpmlint)
fi

if ((${#need_apt[@]})); then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "==> installing Debian packages: ${need_apt[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# rustfmt and clippy come with rustup's default profile; add them where a minimal one was used.
if command -v rustup >/dev/null 2>&1; then
    cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt
    cargo clippy --version >/dev/null 2>&1 || rustup component add clippy
fi

# pyarrow (from PyPI) reads the buffer's Parquet files in the tests, as a user's tools would.
cache="${XDG_CACHE_HOME:-$HOME/.cache}/nordiq"
venv="$cache/venv"
if ! "$venv/bin/python" -c 'import pyarrow' >/dev/null 2>&1; then
    echo "==> installing pyarrow into $venv"
    mkdir -p "$cache"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check pyarrow
fi

# mockupdb (PyPI) speaks MongoDB's wire protocol for the MongoDB source's test.
if [ "${1:-}" = "test" ] && ! "$venv/bin/python" -c 'import mockupdb' >/dev/null 2>&1; then
    echo "==> installing mockupdb into $venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check mockupdb==1.8.1
fi

# playwright-core (npm) drives Debian's chromium in the dashboard tests.
if [ "${1:-}" = "test" ] && [ ! -d "$cache/node/node_modules/playwright-core" ]; then
    echo "==> installing playwright-core into $cache/node"
    mkdir -p "$cache/node"
    npm install --silent --no-audit --no-fund --prefix "$cache/node" playwright-core@1.64.1 >/dev/null
fi

# libtorch 2.13.0 for tch (the TFT), cached outside the clone.
"$(dirname "$0")/libtorch.sh" >/dev/null
