#!/usr/bin/env bash
# Regenerates fixtures/engine/{keras3,tfkeras}/<family>/<case> (see gen_engine.py).
#
#   tools/oracle/gen_engine.sh [--family conv] [--case NAME ...]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
py="$("$here/setup.sh" | tail -n1)"
[ -x "$py" ] || { echo "gen_engine: setup.sh did not yield a python ($py)" >&2; exit 1; }
export TF_CPP_MIN_LOG_LEVEL=3 PYTHONHASHSEED=0 PYTHONWARNINGS=ignore
cd "$root"
env -u TF_USE_LEGACY_KERAS "$py" "$here/gen_engine.py" --impl keras3 "$@" 2> >(grep -vE '^(W0000|I0000|WARNING: All log)' >&2)
env TF_USE_LEGACY_KERAS=1 "$py" "$here/gen_engine.py" --impl tfkeras "$@" 2> >(grep -vE '^(W0000|I0000|WARNING: All log)' >&2)
du -sh fixtures/engine
