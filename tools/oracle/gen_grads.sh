#!/usr/bin/env bash
# Regenerates fixtures/engine_grads/keras3 (see gen_grads.py): Keras's input and weight gradients of
# every fixtures/engine/keras3 case. Rerun after gen_engine.sh changes a case.
#
#   tools/oracle/gen_grads.sh [--case family/case ...]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
py="$("$here/setup.sh" | tail -n1)"
[ -x "$py" ] || { echo "gen_grads: setup.sh did not yield a python ($py)" >&2; exit 1; }
export TF_CPP_MIN_LOG_LEVEL=3 PYTHONHASHSEED=0 PYTHONWARNINGS=ignore
cd "$root"
env -u TF_USE_LEGACY_KERAS "$py" "$here/gen_grads.py" fixtures/engine_grads/keras3 "$@" 2> >(grep -vE '^(W0000|I0000|WARNING: All log|WARNING:tensorflow)' >&2)
du -sh fixtures/engine_grads
