#!/usr/bin/env bash
# The README's first command: install what is missing, build in Release, run the main job.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$(nproc)"
echo "== cutkit demo: CUT end to end on the embedded stories260K (a few minutes) =="
./build/cutkit demo --out cutkit-demo
