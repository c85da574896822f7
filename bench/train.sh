#!/usr/bin/env bash
# Training benchmarks, strata against Keras 3 (TensorFlow backend and JAX backend, each in its own
# process) in the same run on the same machine, on the same .keras files and arrays:
#  seed: the reference model Input(10) -> CustomDense(32) -> Dense(1), compile(adam, mse),
#        fit(epochs=2, batch_size=32) on 100 samples: seconds per warm fit call;
#  mlp:  MLP 784-256-256-10, adam + sparse_categorical_crossentropy, batch 128: samples/s;
#  cnn:  the small CNN on 28x28x1 (Conv32-Pool-Conv64-Pool-Dense10), same: samples/s.
# The models are tools/oracle/bench_keras.py's and bench_fit.py's (fixed seeds); the strata side is
# crates/model/examples/bench_fit.rs. Results: bench/runs/<date>-<host>/train.json, and the
# training section of BENCHMARKS.md is rewritten.
# Usage: bench/train.sh [REPEATS]   (needs the oracle: tools/oracle/setup.sh; installs jax into the
#        oracle venv from tools/oracle/requirements-bench.txt when it is missing)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
REPEATS="${1:-5}"
PY="$(bash "$ROOT/tools/oracle/setup.sh" | tail -n 1)"
OUT="$ROOT/bench/runs/$(date -u +%Y-%m-%d)-$(hostname -s)"
MODELS="${STRATA_BENCH_DIR:-${STRATA_ORACLE_DIR:-$HOME/.cache/strata/oracle}/bench}"
mkdir -p "$OUT" "$MODELS"
export TF_CPP_MIN_LOG_LEVEL=3
RAW="$(mktemp)"
trap 'rm -f "$RAW"' EXIT

if ! "$PY" -c "import jax" 2>/dev/null; then
  echo "installing jax into the oracle venv (tools/oracle/requirements-bench.txt)" >&2
  "$PY" -m pip install --quiet --disable-pip-version-check -r "$ROOT/tools/oracle/requirements-bench.txt" \
    -c "$ROOT/tools/oracle/requirements.txt" >&2
fi
(cd "$ROOT" && cargo build --release -q -p strata-model --example bench_fit)
[ -f "$MODELS/mlp/model.keras" ] || "$PY" "$ROOT/tools/oracle/bench_keras.py" gen "$MODELS" 2>/dev/null
[ -f "$MODELS/fit/seed.keras" ] || "$PY" "$ROOT/tools/oracle/bench_fit.py" gen "$MODELS" 2>/dev/null

echo "strata ..." >&2
"$ROOT/target/release/examples/bench_fit" "$MODELS" "$REPEATS" | tee -a "$RAW"
for backend in tensorflow jax; do
  echo "keras ($backend) ..." >&2
  KERAS_BACKEND=$backend "$PY" "$ROOT/tools/oracle/bench_fit.py" time "$MODELS" "$REPEATS" 2>/dev/null | tee -a "$RAW"
done

"$PY" - "$RAW" "$OUT/train.json" "$ROOT/BENCHMARKS.md" "$REPEATS" <<'PY'
import json, os, platform, sys
raw, out, md, repeats = sys.argv[1:5]
rows = [json.loads(l) for l in open(raw) if l.strip().startswith("{")]
json.dump(rows, open(out, "w"), indent=1)
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
by = {(r["bench"], "strata" if r["tool"] == "strata" else r["backend"]): r for r in rows}
def ratio(r):
    return f"{r:.2f}x" if r < 10 else f"{r:.0f}x"
def secs(s):
    return f"{s*1e3:.2f} ms" if s < 1 else f"{s:.2f} s"
L = []
A = L.append
A("## Training (`fit`)")
A("")
A(f"Command: `bench/train.sh {repeats}` (raw results: `bench/runs/<date>-<host>/train.json`; the Rust side is")
A("`crates/model/examples/bench_fit.rs`, the Keras side `tools/oracle/bench_fit.py`).")
A("")
A(f"Machine: {os.cpu_count()} cores ({cpu}), {mem:.0f} GiB, Linux {platform.release()}; strata uses "
  f"{by.get(('seed', 'strata'), {}).get('threads', '?')} threads, TensorFlow and XLA all cores. Medians of {repeats} runs,")
A("each side warm (Keras's first `fit` call, which traces its train step, is not timed). Both sides load")
A("the same `.keras` files and train on the same arrays; ratios are Keras time over strata time (above 1:")
A("strata is faster).")
A("")
A("| benchmark | strata | Keras (TF) | Keras (JAX) | vs TF | vs JAX | issue target |")
A("|---|---|---|---|---|---|---|")
s, t, j = by.get(("seed", "strata")), by.get(("seed", "tensorflow")), by.get(("seed", "jax"))
if s and t and j:
    A(f"| seed model, `fit` 2 epochs x 100 samples (time per call) | {secs(s['seconds'])} | {secs(t['seconds'])} | "
      f"{secs(j['seconds'])} | {ratio(t['seconds']/s['seconds'])} | {ratio(j['seconds']/s['seconds'])} | 20x vs Keras |")
names = {"mlp": "MLP 784-256-256-10, batch 128 (samples/s)", "cnn": "small CNN 28x28x1, batch 128 (samples/s)"}
targets = {"mlp": "at least Keras+JAX", "cnn": "at least Keras+TF"}
for m, label in names.items():
    s, t, j = by.get((m, "strata")), by.get((m, "tensorflow")), by.get((m, "jax"))
    if s and t and j:
        A(f"| {label} | {s['samples_per_s']:,.0f} | {t['samples_per_s']:,.0f} | {j['samples_per_s']:,.0f} | "
          f"{ratio(s['samples_per_s']/t['samples_per_s'])} | {ratio(s['samples_per_s']/j['samples_per_s'])} | {targets[m]} |")
A("")
section = "\n".join(L) + "\n"
BEGIN, END = "<!-- train:begin (bench/train.sh rewrites this section) -->", "<!-- train:end -->"
text = open(md).read()
block = BEGIN + "\n" + section + END
if BEGIN in text and END in text:
    pre, rest = text.split(BEGIN, 1)
    text = pre + block + rest.split(END, 1)[1]
else:
    text = text.rstrip("\n") + "\n\n" + block + "\n"
open(md, "w").write(text)
print(section)
PY
echo "wrote $OUT/train.json and the training section of BENCHMARKS.md"
