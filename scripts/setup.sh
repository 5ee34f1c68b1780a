#!/usr/bin/env bash
# The README's first command: install what is missing, build in Release, run the main job.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$(nproc)"
echo "== cutkit generate (embedded stories260K, greedy) =="
./build/cutkit generate --steps 256
