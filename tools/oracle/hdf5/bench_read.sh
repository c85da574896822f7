#!/usr/bin/env bash
# Read throughput: strata-hdf5 (release) vs h5py on the same ~100 MB file with
# 100 float32 datasets, both warm cache, best of REPEATS runs (open + read all).
# Usage: tools/oracle/hdf5/bench_read.sh [PYTHON]   (default: the oracle venv, then python3)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../../.." && pwd)"
PY="${1:-${STRATA_ORACLE_DIR:-$HOME/.cache/strata/oracle}/venv/bin/python}"
[ -x "$PY" ] || PY=python3
REPEATS="${REPEATS:-5}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
FILE="$WORK/bench_100mb.h5"

"$PY" - "$FILE" <<'PY'
import sys, h5py, numpy as np
rng = np.random.default_rng(0)
with h5py.File(sys.argv[1], "w") as f:  # h5py defaults, as Keras writes
    for i in range(100):
        f.create_dataset(f"layers/layer_{i:03d}/vars/0", data=rng.standard_normal((512, 512)).astype("f4"))
PY
ls -l "$FILE" | awk '{print "file:", $5, "bytes"}'
cat "$FILE" > /dev/null  # warm the page cache

(cd "$ROOT" && cargo build --release -q -p strata-hdf5 --example read_all)
"$ROOT/target/release/examples/read_all" "$FILE" "$REPEATS"

"$PY" - "$FILE" "$REPEATS" <<'PY'
import sys, time, h5py
path, repeats = sys.argv[1], int(sys.argv[2])
best, total = float("inf"), 0
for _ in range(repeats):
    t = time.perf_counter()
    with h5py.File(path, "r") as f:
        names = []
        f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
        total = sum(f[n][()].nbytes for n in names)
    best = min(best, time.perf_counter() - t)
print(f"h5py {h5py.version.version}: {total} bytes in {best:.4f} s (best of {repeats}) = {total / best / 1e6:.0f} MB/s")
PY
