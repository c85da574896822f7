#!/usr/bin/env bash
# Regenerate every legacy fixture generation under fixtures/ (run setup.sh first).
#   tools/oracle/legacy/gen_all.sh                  # all generations
#   tools/oracle/legacy/gen_all.sh keras1_th tf213  # only these
#   ONLY_CASES=lambda,cnn tools/oracle/legacy/gen_all.sh   # only these cases (others are kept)
# FIXTURES=/some/dir overrides the output root (default: <repo>/fixtures).
set -uo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
ORACLE="${STRATA_ORACLE_DIR:-$HOME/.cache/strata/oracle}/legacy"
FIX="${FIXTURES:-$ROOT/fixtures}"
GEN="$HERE/gen_legacy.py"
PY27="$(pyenv root)/versions/2.7.18/bin/python"
PY36="$ORACLE/py36/bin/python"
PY311="$ORACLE/py311/bin/python"
K="$ORACLE/keras"
export PYTHONNOUSERSITE=1 PYTHONHASHSEED=0
for p in "$PY36" "$PY311" "$ORACLE/py27/tensorflow"; do
  [ -e "$p" ] || { echo "missing $p: run tools/oracle/legacy/setup.sh first" >&2; exit 2; }
done

# name | python | PYTHONPATH | backend | image ordering | cases (empty = all of the flavour)
GENERATIONS=(
  "keras1_th|$PY36|$K/1.2.2|theano|th|"
  "keras1_tf|$PY27|$K/1.2.2:$ORACLE/py27|tensorflow|tf|"
  "keras1_1_tf|$PY27|$K/1.1.2:$ORACLE/py27|tensorflow|tf|mlp,cnn,lstm,merge,lambda"
  "keras1_0_th|$PY36|$K/1.0.8|theano|th|mlp,cnn,lstm,merge,lambda"
  "keras2_0_8|$PY36|$K/2.0.8|tensorflow|channels_last|"
  "keras2_1_6|$PY36|$K/2.1.6|tensorflow|channels_last|"
  "keras2_2_4|$PY36|$K/2.2.4|tensorflow|channels_last|"
  "keras2_3_1|$PY36|$K/2.3.1|tensorflow|channels_last|"
  "keras2_2_4_th|$PY36|$K/2.2.4|theano|channels_first|"
  "tf213|$PY311||tfkeras||"
)

want() { [ $# -eq 0 ] && return 0; local n="$1"; shift; for w in "${SELECTED[@]}"; do [ "$w" = "$n" ] && return 0; done; return 1; }
SELECTED=("$@")
rc=0
for g in "${GENERATIONS[@]}"; do
  IFS='|' read -r name py pp backend order cases <<< "$g"
  if [ ${#SELECTED[@]} -gt 0 ] && ! want "$name" "${SELECTED[@]}"; then continue; fi
  args=(--generation "$name" --out "$FIX/$name" --backend "$backend")
  [ -n "$order" ] && args+=(--image-ordering "$order")
  if [ -n "${ONLY_CASES:-}" ]; then
    sel=""
    for c in ${ONLY_CASES//,/ }; do
      if [ -z "$cases" ] || [[ ",$cases," == *",$c,"* ]]; then sel="$sel${sel:+,}$c"; fi
    done
    [ -z "$sel" ] && continue
    args+=(--cases "$sel")
  else
    [ -n "$cases" ] && args+=(--cases "$cases")
    rm -rf "$FIX/$name"
  fi
  (cd "$(mktemp -d)" && PYTHONPATH="$pp" "$py" "$GEN" "${args[@]}") || rc=1
done
du -sh "$FIX"/keras1_* "$FIX"/keras2_* "$FIX"/tf213 2>/dev/null
exit $rc
