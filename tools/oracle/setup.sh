#!/usr/bin/env bash
# Creates (or reuses) the Python oracle environment used to generate and check Keras fixtures.
#
#   tools/oracle/setup.sh            # prints the venv path's python on the last line
#
# Location: ${STRATA_ORACLE_DIR:-$HOME/.cache/strata/oracle}/venv
# Idempotent: a stamp file (venv/.strata-stamp) holds a sha256 over the pin files and this
# script's pin-relevant inputs; when it matches, the script does nothing and exits 0 quickly.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
oracle_dir="${STRATA_ORACLE_DIR:-$HOME/.cache/strata/oracle}"
venv="$oracle_dir/venv"
req="$here/requirements.txt"
req_nodeps="$here/requirements-nodeps.txt"
stamp="$venv/.strata-stamp"

say() { echo "oracle-setup: $*" >&2; }
die() { echo "oracle-setup: error: $*" >&2; exit 1; }

[ -f "$req" ] || die "missing $req (the pinned requirement list); restore it from git"
[ -f "$req_nodeps" ] || die "missing $req_nodeps; restore it from git"

want="$(cat "$req" "$req_nodeps" | sha256sum | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$venv/bin/python" ]; then
    echo "$venv/bin/python"
    exit 0
fi

# Pick CPython 3.11: pyenv's 3.11.7 first, then python3.11, then python3 if it is 3.11.
py=""
if command -v pyenv >/dev/null 2>&1; then
    cand="$(pyenv root)/versions/3.11.7/bin/python3"
    [ -x "$cand" ] && py="$cand"
fi
if [ -z "$py" ] && command -v python3.11 >/dev/null 2>&1; then py="$(command -v python3.11)"; fi
if [ -z "$py" ] && command -v python3 >/dev/null 2>&1; then py="$(command -v python3)"; fi
[ -n "$py" ] || die "no python found; install CPython 3.11 (pyenv install 3.11.7) and retry"
ver="$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
[ "$ver" = "3.11" ] || die "$py is Python $ver but the pins need CPython 3.11; install 3.11.7 with pyenv and retry"

log="$oracle_dir/setup.log"
mkdir -p "$oracle_dir"
: > "$log"

if [ -d "$venv" ]; then
    say "stamp missing or stale; rebuilding $venv"
    rm -rf "$venv"
fi
say "creating venv at $venv with $py"
"$py" -m venv "$venv" >>"$log" 2>&1 || die "python -m venv failed (see $log)"

say "installing pinned packages from requirements.txt (tensorflow-cpu is ~250 MB; this takes a few minutes)"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req" >>"$log" 2>&1 \
    || { tail -20 "$log" >&2; die "pip install -r requirements.txt failed (full log: $log)"; }

say "installing tf-keras with --no-deps"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -r "$req_nodeps" >>"$log" 2>&1 \
    || { tail -20 "$log" >&2; die "pip install --no-deps tf-keras failed (full log: $log)"; }

say "verifying imports"
export TF_CPP_MIN_LOG_LEVEL=3
"$venv/bin/python" - >>"$log" 2>&1 <<'EOF' || { tail -20 "$log" >&2; die "keras 3 import check failed (full log: $log)"; }
import keras, h5py, numpy
assert keras.__version__ == "3.15.1", keras.__version__
print("keras", keras.__version__, "h5py", h5py.__version__, "numpy", numpy.__version__)
EOF
TF_USE_LEGACY_KERAS=1 "$venv/bin/python" - >>"$log" 2>&1 <<'EOF' || { tail -20 "$log" >&2; die "tf-keras import check failed (full log: $log)"; }
import tf_keras
import tensorflow as tf
assert tf.__version__ == "2.21.0", tf.__version__
assert tf_keras.__version__ == "2.21.0", tf_keras.__version__
# tf.keras must resolve to tf_keras when TF_USE_LEGACY_KERAS=1
assert tf.keras.Sequential.__module__.startswith("tf_keras."), tf.keras.Sequential.__module__
print("tf", tf.__version__, "tf_keras", tf_keras.__version__)
EOF

echo "$want" > "$stamp"
say "ready"
echo "$venv/bin/python"
