#!/usr/bin/env bash
# Runs every test of the project, installing what the tests need first.
# Usage: scripts/test.sh            (from anywhere)
set -euo pipefail
cd "$(dirname "$0")/.."

# A build cache outside the work tree, so that a fresh clone does not rebuild everything.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ferry-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

step() { printf '\n==> %s\n' "$*"; }

step "python tools for the tests (venv)"
# A venv per requirements hash, outside the work tree, so CI reuses it between runs.
req_hash=$(sha256sum tests/requirements.txt | cut -c1-12)
venv="${FERRY_TEST_VENV:-$HOME/.cache/ferry-venv-$req_hash}"
if [ ! -x "$venv/bin/python" ] || [ ! -f "$venv/.complete" ]; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/requirements.txt
  touch "$venv/.complete"
fi
export FERRY_TEST_PYTHON="$venv/bin/python"
echo "using $FERRY_TEST_PYTHON"

step "formatting"
cargo fmt --all -- --check

step "lints"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "example handler tests (python)"
python3 -m unittest discover -s examples/queue-worker -t examples/queue-worker

step "runtime shim tests (node and python against a fake Runtime API)"
python3 -m unittest discover -s templates/runtime/tests

step "Rust tests (unit, property, golden, CLI, corpus)"
cargo test --workspace --locked --no-fail-fast

