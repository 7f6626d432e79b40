#!/usr/bin/env bash
# Installs the Debian packages nmhash builds, tests and benchmarks with,
# skipping those already present. Needs root (or sudo) only when something
# is missing. Usage: install-deps.sh [extra Debian packages]
set -euo pipefail

packages=(
  cmake make ninja-build g++ clang
  libeigen3-dev catch2 libbenchmark-dev zlib1g-dev
  libcli11-dev nlohmann-json3-dev
  libpng-dev libturbojpeg0-dev pkg-config libstb-dev
  libfaiss-dev
  pybind11-dev python3-dev python3-numpy python3-venv
  dataset-fashion-mnist
  "$@"
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  sudo_cmd=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -q
"${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
