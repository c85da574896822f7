#!/usr/bin/env bash
# Build the old-Keras oracle environments (idempotent; re-running only installs what is missing).
# Everything goes under ${STRATA_ORACLE_DIR:-$HOME/.cache/strata/oracle}/legacy, never into the repo.
#   py36/               venv, CPython 3.6.15: tensorflow 1.15.5, theano 1.0.5, h5py 2.10.0, numpy 1.18.5, scipy 1.5.4
#   keras/<version>/    standalone Keras packages (pip --target, --no-deps), picked with PYTHONPATH
#   py27/               --target site dir for CPython 2.7.18: tensorflow 0.12.1 (the last TF for Keras 1.0/1.1), h5py 2.10.0
#   py311/              venv, CPython 3.11.7: tensorflow-cpu 2.13.1 (tf.keras 2.13)
set -euo pipefail
ORACLE="${STRATA_ORACLE_DIR:-$HOME/.cache/strata/oracle}/legacy"
PYROOT="$(pyenv root)/versions"
ONLY="${1:-all}"   # all | py36 | py27 | py311
mkdir -p "$ORACLE"
export PIP_DISABLE_PIP_VERSION_CHECK=1

stamp() { [ -f "$ORACLE/.stamp-$1" ] && [ "$(cat "$ORACLE/.stamp-$1")" = "$2" ]; }
mark() { echo "$2" > "$ORACLE/.stamp-$1"; }

if [ "$ONLY" = all ] || [ "$ONLY" = py36 ]; then
  SPEC36="tensorflow==1.15.5 theano==1.0.5 h5py==2.10.0 numpy==1.18.5 scipy==1.5.4 pyyaml==5.4.1 six protobuf==3.19.6"
  if ! stamp py36 "$SPEC36"; then
    [ -x "$ORACLE/py36/bin/python" ] || "$PYROOT/3.6.15/bin/python" -m venv "$ORACLE/py36"
    # pip 18 (what 3.6.15 ships) cannot see the manylinux2010 tensorflow 1.15 wheel.
    "$ORACLE/py36/bin/python" -m pip install -q "pip==21.3.1"
    "$ORACLE/py36/bin/python" -m pip install -q $SPEC36
    mark py36 "$SPEC36"
  fi
  for v in 1.0.8 1.1.2 1.2.2 2.0.8 2.1.6 2.2.4 2.3.1; do
    if ! stamp "keras-$v" "$v"; then
      rm -rf "$ORACLE/keras/$v"
      "$ORACLE/py36/bin/python" -m pip install -q --no-deps --target "$ORACLE/keras/$v" "keras==$v"
      mark "keras-$v" "$v"
    fi
  done
fi

if [ "$ONLY" = all ] || [ "$ONLY" = py27 ]; then
  # TensorFlow 0.12.1 has wheels only for CPython 2.7 (cp27mu) and 3.3-3.5 on Linux; pyenv carries 2.7.18 (UCS4).
  # Python 2.7 here has no venv/virtualenv, so install into a --target dir used through PYTHONPATH.
  SPEC27="tensorflow==0.12.1 h5py==2.10.0 numpy==1.16.6 six==1.16.0 protobuf==3.17.3 pyyaml==5.4.1 mock==3.0.5 funcsigs==1.0.2 pbr==5.11.1 scipy==1.2.3"
  if ! stamp py27 "$SPEC27"; then
    rm -rf "$ORACLE/py27"
    PYTHONNOUSERSITE=1 "$PYROOT/2.7.18/bin/python" -m pip install -q --target "$ORACLE/py27" $SPEC27
    # protobuf's namespace .pth is not read from a PYTHONPATH dir; give py2 a real package instead.
    touch "$ORACLE/py27/google/__init__.py"
    mark py27 "$SPEC27"
  fi
fi

if [ "$ONLY" = all ] || [ "$ONLY" = py311 ]; then
  SPEC311="tensorflow-cpu==2.13.1 h5py==3.9.0"
  if ! stamp py311 "$SPEC311"; then
    [ -x "$ORACLE/py311/bin/python" ] || "$PYROOT/3.11.7/bin/python" -m venv "$ORACLE/py311"
    "$ORACLE/py311/bin/python" -m pip install -q $SPEC311
    mark py311 "$SPEC311"
  fi
fi
echo "legacy oracle environments ready under $ORACLE"
