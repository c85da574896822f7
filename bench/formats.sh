#!/usr/bin/env bash
# Benchmarks for the file layer, strata against Keras/h5py in the same run on the same machine:
#  1. weights read throughput on a ~100 MB Keras model (legacy .h5, .keras and .weights.h5):
#     strata (open + read every tensor) vs h5py (open + read every dataset) vs Keras load_weights;
#  2. wall time of `strata inspect FILE` vs `python -c "import keras; keras.models.load_model(F).summary()"`.
# Results go to bench/runs/<date>-<host>/formats.json and a table on stdout.
# Usage: bench/formats.sh [REPEATS]    (needs the oracle: tools/oracle/setup.sh)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
REPEATS="${1:-5}"
PY="$(bash "$ROOT/tools/oracle/setup.sh" | tail -n 1)"
OUT="$ROOT/bench/runs/$(date -u +%Y-%m-%d)-$(hostname -s)"
mkdir -p "$OUT"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
(cd "$ROOT" && cargo build --release -q -p strata-cli && cargo build --release -q -p strata-format --example read_weights)
STRATA="$ROOT/target/release/strata"
READ="$ROOT/target/release/examples/read_weights"

# a ~100 MB model: 6 Dense layers of 2048x2048 float32 (+ a small head)
"$PY" - "$WORK" <<'PY' 2>/dev/null
import os, sys
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import keras
keras.utils.set_random_seed(0)
d = sys.argv[1]
layers = [keras.Input((2048,))] + [keras.layers.Dense(2048, activation="relu") for _ in range(6)] + [keras.layers.Dense(10)]
m = keras.Sequential(layers, name="bench_mlp")
m.save(f"{d}/big.keras"); m.save(f"{d}/big.h5"); m.save_weights(f"{d}/big.weights.h5")
PY
ls -l "$WORK"/big.* | awk '{print $5, $9}'
for f in big.h5 big.keras big.weights.h5; do cat "$WORK/$f" > /dev/null; done

results=()
for f in big.h5 big.keras big.weights.h5; do
  s=$("$READ" "$WORK/$f" "$REPEATS")
  h=$("$PY" - "$WORK/$f" "$REPEATS" <<'PY'
import io, sys, time, zipfile, h5py
path, repeats = sys.argv[1], int(sys.argv[2])
best = float("inf")
for _ in range(repeats):
    t = time.perf_counter()
    if path.endswith(".keras"):
        zf = zipfile.ZipFile(path); fh = io.BytesIO(zf.read("model.weights.h5")); f = h5py.File(fh, "r")
    else:
        f = h5py.File(path, "r")
    names = []
    f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
    total = sum(f[n][()].nbytes for n in names)
    f.close()
    best = min(best, time.perf_counter() - t)
print('{"tool": "h5py %s", "bytes": %d, "seconds": %.6f, "mb_per_s": %.1f}' % (h5py.version.version, total, best, total / best / 1e6))
PY
)
  echo "$f strata: $s"
  echo "$f h5py:   $h"
  results+=("{\"file\": \"$f\", \"strata\": $s, \"h5py\": $h}")
done

# inspect vs keras load_model + summary (process wall time, best of REPEATS)
time_cmd() { "$PY" - "$REPEATS" "$@" <<'PY'
import subprocess, sys, time
repeats, cmd = int(sys.argv[1]), sys.argv[2:]
best = float("inf")
for _ in range(repeats):
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    best = min(best, time.perf_counter() - t)
print("%.4f" % best)
PY
}
for f in big.keras big.h5; do
  ts=$(time_cmd "$STRATA" inspect "$WORK/$f")
  tk=$(time_cmd "$PY" -c "import keras; keras.models.load_model('$WORK/$f', compile=False).summary()")
  echo "$f inspect: strata ${ts}s, keras load_model+summary ${tk}s"
  results+=("{\"file\": \"$f\", \"inspect_s\": $ts, \"keras_load_summary_s\": $tk}")
done
( IFS=,; echo "[${results[*]}]" ) > "$OUT/formats.json"
echo "wrote $OUT/formats.json"
