#!/usr/bin/env bash
# Regenerates fixtures/train/fit (see gen_fit.py): whole `fit` runs of the seed and cnn models.
#
#   tools/oracle/gen_fit.sh [--model seed|cnn ...]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
py="$("$here/setup.sh" | tail -n1)"
[ -x "$py" ] || { echo "gen_fit: setup.sh did not yield a python ($py)" >&2; exit 1; }
export TF_CPP_MIN_LOG_LEVEL=3 PYTHONHASHSEED=0 PYTHONWARNINGS=ignore
cd "$root"
env -u TF_USE_LEGACY_KERAS "$py" "$here/gen_fit.py" "$@" 2> >(grep -vE '^(W0000|I0000|WARNING: All log)' >&2)
du -sh fixtures/train/fit
