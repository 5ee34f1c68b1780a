#!/usr/bin/env bash
# Installs the Debian packages cutkit needs that are missing, and says which. Idempotent:
# when everything is there it installs nothing. Pass extra package names as arguments
# (scripts/test.sh adds python3-torch, the reference some tests check against).
set -euo pipefail

# libopenmpi-dev + openmpi-bin: data-parallel training (-DCUTKIT_MPI=ON, mpirun), which CI builds
# libutf8proc-dev: Unicode normalization (NFC etc.) for tokenizer.json normalizers (Qwen)
# libdnnl-dev: oneDNN, bf16 and small-M products (optional at build time: -DCUTKIT_DNNL=OFF)
packages=(gcc make cmake pkg-config libopenblas-dev libopenblas-openmp-dev libcjson-dev
          libcsv-dev libcmocka-dev libpcre2-dev libutf8proc-dev gnuplot-nox libopenmpi-dev openmpi-bin
          libdnnl-dev "$@")
missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
