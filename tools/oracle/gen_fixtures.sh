#!/usr/bin/env bash
# Regenerates fixtures/keras3 (Keras 3.15.1) and fixtures/tfkeras (tf-keras 2.21.0), then records
# the cross-implementation load matrix ("cross_load" in each meta.json).
#
#   tools/oracle/gen_fixtures.sh [--case NAME ...]      # extra args go to gen_fixtures.py
#
# With --case, only those cases are regenerated and the cross-load step is skipped.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
py="$("$here/setup.sh" | tail -n1)"
[ -x "$py" ] || { echo "gen_fixtures: setup.sh did not yield a python ($py)" >&2; exit 1; }

export TF_CPP_MIN_LOG_LEVEL=3 PYTHONHASHSEED=0 PYTHONWARNINGS=ignore
cd "$root"

# Run a step with TF/Keras chatter sent to a log; show the log's tail if the step fails.
step() {
    local log
    log="$(mktemp)"
    if ! "$@" 2>"$log"; then
        echo "gen_fixtures: step failed: $*" >&2
        grep -vE '^(W0000|I0000|WARNING: All log messages)' "$log" | tail -n 60 >&2
        rm -f "$log"
        exit 1
    fi
    rm -f "$log"
}

echo "== keras3 -> fixtures/keras3" >&2
step env -u TF_USE_LEGACY_KERAS "$py" "$here/gen_fixtures.py" --impl keras3 --out fixtures/keras3 "$@"
echo "== tfkeras -> fixtures/tfkeras" >&2
step env TF_USE_LEGACY_KERAS=1 "$py" "$here/gen_fixtures.py" --impl tfkeras --out fixtures/tfkeras "$@"

if [ "$#" -eq 0 ]; then
    echo "== cross-load matrix" >&2
    step "$py" "$here/interop.py" --impl tfkeras --fixtures fixtures --from keras3
    step "$py" "$here/interop.py" --impl keras3 --fixtures fixtures --from tfkeras
fi
du -sh fixtures/keras3 fixtures/tfkeras
