#!/usr/bin/env bash
# Regenerates strata-marshal's opcode tables and fixtures with every interpreter available:
# pyenv CPython 2.7 and 3.6-3.13, and CPython 3.14 inside Pyodide (npm `pyodide`, run by node).
#   PYODIDE_NODE_MODULES=/path/to/node_modules bash tools/marshal/gen_all.sh
# Without PYODIDE_NODE_MODULES it installs pyodide@314.0.7 into a temporary directory.
set -euo pipefail
cd "$(dirname "$0")/../.."
ops=crates/marshal/data/opcodes
fix=fixtures/marshal
for v in 2.7 3.6 3.7 3.8 3.9 3.10 3.11 3.12 3.13; do
  py=$(ls -d "$HOME"/.pyenv/versions/"$v".*/bin/python 2>/dev/null | head -1 || true)
  if [ -z "$py" ]; then echo "skip $v: not installed"; continue; fi
  "$py" tools/marshal/dump_opcodes.py "$ops"
  "$py" tools/marshal/make_fixtures.py "$fix"
done
nm=${PYODIDE_NODE_MODULES:-}
if [ -z "$nm" ]; then
  d=$(mktemp -d)
  (cd "$d" && npm init -y >/dev/null && npm install --silent pyodide@314.0.7)
  nm=$d/node_modules
fi
NODE_PATH=$nm node tools/marshal/run_pyodide.js tools/marshal/dump_opcodes.py "$ops"
NODE_PATH=$nm node tools/marshal/run_pyodide.js tools/marshal/make_fixtures.py "$fix"
