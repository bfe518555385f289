#!/usr/bin/env bash
# Installs what ember needs from Debian's archive, only if something is missing. Arguments name
# extra packages to install the same way (scripts/reproduce.sh passes the data some papers need).
set -euo pipefail
packages=(build-essential cmake ninja-build pkg-config ccache
          libopenblas-openmp-dev libfmt-dev libgtest-dev nlohmann-json3-dev libcli11-dev zlib1g-dev
          dataset-fashion-mnist gnuplot-nox "$@")
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "ember setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
