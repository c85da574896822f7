#!/usr/bin/env bash
# Lambda-layer files from real CPythons and what Keras 3.15.1 does with each; see gen_lambda_files.py.
# Run from the repository root. Needs the oracle venv (tools/oracle/setup.sh) and pyenv CPythons.
set -euo pipefail
PY=${STRATA_ORACLE_PY:-$HOME/.cache/strata/oracle/venv/bin/python}
OUT=fixtures/doctor/lambda
mkdir -p "$OUT"
export TF_CPP_MIN_LOG_LEVEL=3 CUDA_VISIBLE_DEVICES=""
if [ "${1:-}" != "--marshal-only" ]; then
  "$PY" tools/doctor/gen_lambda_files.py save
  "$PY" tools/doctor/gen_lambda_files.py record
  "$PY" tools/doctor/gen_lambda_files.py truncated_save
  # the committed legacy Lambda fixtures (CPython 2.7, 3.6, 3.11) loaded by four Keras/CPython pairs
  "$PY" tools/doctor/record_legacy.py record
fi
"$HOME/.pyenv/versions/3.11.7/bin/python" tools/doctor/gen_lambda_files.py blobs
# marshal.loads + call of every writer's blob in every reader CPython pyenv has
{
  echo "["
  first=1
  for v in "$HOME"/.pyenv/versions/3.*; do
    [ -x "$v/bin/python" ] || continue
    [ $first = 1 ] || echo ","
    first=0
    "$v/bin/python" tools/doctor/gen_lambda_files.py marshal
  done
  # CPython 3.14 inside Pyodide (npm pyodide@314.0.7, as tools/marshal/gen_all.sh installs it)
  if [ -n "${PYODIDE_NODE_MODULES:-}" ]; then
    echo ","
    "$PY" tools/doctor/gen_lambda_files.py marshal_pyodide "$PYODIDE_NODE_MODULES"
  fi
  echo "]"
} > "$OUT/marshal_matrix.json"
