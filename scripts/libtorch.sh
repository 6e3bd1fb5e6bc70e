#!/usr/bin/env bash
# Provides libtorch 2.13.0 (CPU and CUDA-capable, from PyPI's torch wheel) in a cache
# outside the clone, links it as <repo>/.libtorch (what .cargo/config.toml points LIBTORCH
# at), and prints its directory. Reuses the cache when complete.
#   LIBTORCH_CACHE (default ~/.cache/nordiq) decides where.
# Layout: $cache/libtorch-2.13.0/{include,lib}; lib/ also holds libcudart.so.13 and
# libcupti.so.13 from NVIDIA's wheels (libtorch_cpu needs them loaded even without a GPU).
set -euo pipefail
version=2.13.0
cache="${LIBTORCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nordiq}"
dir="$cache/libtorch-$version"
repo="$(cd "$(dirname "$0")/.." && pwd)"
link() { ln -sfn "$dir" "$repo/.libtorch"; echo "$dir"; }
if [ -f "$dir/.complete" ]; then
    link
    exit 0
fi
wheels="$cache/wheels"
mkdir -p "$wheels"
python=python3
command -v "$python" >/dev/null || { echo "python3 is needed to fetch libtorch (scripts/ensure-deps.sh installs it)" >&2; exit 1; }
echo "==> downloading torch $version and the CUDA runtime wheels from PyPI into $wheels (about 530 MB, once)" >&2
"$python" -m pip download --quiet --disable-pip-version-check --no-deps \
    -d "$wheels" \
    "torch==$version" "nvidia-cuda-runtime==13.0.96" "nvidia-cuda-cupti==13.0.85" >&2
tmp="$dir.tmp"
rm -rf "$tmp"
mkdir -p "$tmp"
echo "==> unpacking libtorch into $dir" >&2
"$python" - "$wheels" "$tmp" "$version" <<'PY'
import glob, os, shutil, sys, zipfile
wheels, out, version = sys.argv[1:4]
torch = glob.glob(os.path.join(wheels, f"torch-{version}-*.whl"))
if not torch:
    sys.exit(f"no torch {version} wheel in {wheels}")
with zipfile.ZipFile(torch[0]) as z:
    for name in z.namelist():
        for part in ("include", "lib"):
            prefix = f"torch/{part}/"
            if name.startswith(prefix) and not name.endswith("/"):
                dest = os.path.join(out, part, name[len(prefix):])
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                with z.open(name) as src, open(dest, "wb") as dst:
                    shutil.copyfileobj(src, dst)
for pattern, lib in (("nvidia_cuda_runtime-*.whl", "libcudart.so.13"), ("nvidia_cuda_cupti-*.whl", "libcupti.so.13")):
    found = glob.glob(os.path.join(wheels, pattern))
    if not found:
        sys.exit(f"no {pattern} in {wheels}")
    with zipfile.ZipFile(found[0]) as z:
        names = [n for n in z.namelist() if n.endswith("/" + lib)]
        if not names:
            sys.exit(f"{lib} not in {found[0]}")
        with z.open(names[0]) as src, open(os.path.join(out, "lib", lib), "wb") as dst:
            shutil.copyfileobj(src, dst)
PY
touch "$tmp/.complete"
rm -rf "$dir"
mv "$tmp" "$dir"
link
