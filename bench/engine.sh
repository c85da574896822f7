#!/usr/bin/env bash
# Engine benchmarks, strata against Keras 3 (TensorFlow backend and JAX backend, each in its own
# process) in the same run on the same machine:
#  (a) one-sample latency: strata `Model::predict` vs Keras eager `model(x)`;
#  (b) batch-128 inference throughput (samples/s): strata `Model::predict` vs Keras
#      `model.predict_on_batch` (a compiled predict step: tf.function / jax.jit);
#      models: MLP 784-256-256-10, a small CNN on 28x28x1, MobileNetV2 (alpha 1, 96x96, random weights);
#  (c) end-to-end `strata predict MODEL --inputs X.npz --output Y.npz` (process start, load, predict,
#      write) vs `python -c` (import keras, load_model, predict, np.savez).
# The models are built by tools/oracle/bench_keras.py with fixed seeds and saved as .keras files;
# strata loads the same files. Before timing, each side's outputs are compared with Keras (TF)'s.
# Results: bench/runs/<date>-<host>/engine.json, and the engine section of BENCHMARKS.md is rewritten.
# Usage: bench/engine.sh [REPEATS]     (needs the oracle: tools/oracle/setup.sh; installs jax into
#        the oracle venv from tools/oracle/requirements-bench.txt when it is missing)
#        bench/engine.sh --render bench/runs/<date>-<host>/engine.json [REPEATS]
#                                    (only rewrites BENCHMARKS.md from saved results)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
RENDER=""
if [ "${1:-}" = "--render" ]; then RENDER="$2"; shift 2; fi
REPEATS="${1:-5}"
PY="$(bash "$ROOT/tools/oracle/setup.sh" | tail -n 1)"
OUT="$ROOT/bench/runs/$(date -u +%Y-%m-%d)-$(hostname -s)"
MODELS="${STRATA_BENCH_DIR:-${STRATA_ORACLE_DIR:-$HOME/.cache/strata/oracle}/bench}"
mkdir -p "$OUT" "$MODELS"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
export TF_CPP_MIN_LOG_LEVEL=3
RAW="$WORK/rows.jsonl"
: > "$RAW"

if [ -z "$RENDER" ]; then

if ! "$PY" -c "import jax" 2>/dev/null; then
  echo "installing jax into the oracle venv (tools/oracle/requirements-bench.txt)" >&2
  "$PY" -m pip install --quiet --disable-pip-version-check -r "$ROOT/tools/oracle/requirements-bench.txt" \
    -c "$ROOT/tools/oracle/requirements.txt" >&2
fi

(cd "$ROOT" && cargo build --release -q -p strata-cli && cargo build --release -q -p strata-layers --example bench_engine)
STRATA="$ROOT/target/release/strata"
BENCH="$ROOT/target/release/examples/bench_engine"

"$PY" "$ROOT/tools/oracle/bench_keras.py" gen "$MODELS" 2> >(grep -v -i warning >&2)

echo "strata ..." >&2
"$BENCH" "$MODELS" "$REPEATS" | tee -a "$RAW"
for backend in tensorflow jax; do
  echo "keras ($backend) ..." >&2
  KERAS_BACKEND=$backend "$PY" "$ROOT/tools/oracle/bench_keras.py" time "$MODELS" "$REPEATS" 2>/dev/null | tee -a "$RAW"
done

# (c) end-to-end CLI vs python -c, process wall time, best of REPEATS
time_cmd() { "$PY" - "$REPEATS" "$@" <<'PY'
import subprocess, sys, time
repeats, cmd = int(sys.argv[1]), sys.argv[2:]
best = float("inf")
for _ in range(repeats):
    t = time.perf_counter()
    r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if r.returncode != 0:
        print("error: " + r.stderr.decode(errors="replace").strip().splitlines()[-1:][0] if r.stderr else "error")
        sys.exit(0)
    best = min(best, time.perf_counter() - t)
print("%.4f" % best)
PY
}
for m in mlp cnn mobilenetv2; do
  f="$MODELS/$m/model.keras"
  "$PY" -c "import numpy as np; d=np.load('$MODELS/$m/io.npz'); np.savez('$WORK/x_$m.npz', in_0=d['in_0'])"
  if "$STRATA" predict --help >/dev/null 2>&1; then
    ts=$(time_cmd "$STRATA" predict "$f" --inputs "$WORK/x_$m.npz" --output "$WORK/y_$m.npz")
    if [ -f "$WORK/y_$m.npz" ]; then
      "$PY" -c "import numpy as np; a=np.load('$WORK/y_$m.npz')['arr_0']; b=np.load('$MODELS/$m/io.npz')['out_0']; print('strata predict $m: max abs diff vs Keras %.2e' % np.max(np.abs(a-b)))" >&2 || true
    fi
  else
    ts="missing: this strata has no predict subcommand"
  fi
  for backend in tensorflow jax; do
    tk=$(KERAS_BACKEND=$backend time_cmd "$PY" -c "import numpy as np, keras; m=keras.models.load_model('$f', compile=False); y=m.predict(np.load('$WORK/x_$m.npz')['in_0'], verbose=0); np.savez('$WORK/k_$m.npz', out_0=y)")
    echo "{\"cli\": \"$m\", \"backend\": \"$backend\", \"strata_s\": \"$ts\", \"python_s\": \"$tk\"}" | tee -a "$RAW"
  done
done

  JSON_OUT="$OUT/engine.json"
else
  "$PY" -c "import json, sys; [print(json.dumps(r)) for r in json.load(open(sys.argv[1]))]" "$RENDER" > "$RAW"
  JSON_OUT="$WORK/engine.json"
fi

"$PY" - "$RAW" "$JSON_OUT" "$ROOT/BENCHMARKS.md" "$REPEATS" <<'PY'
import json, os, platform, re, subprocess, sys
raw, out, md, repeats = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
rows = [json.loads(l) for l in open(raw) if l.strip().startswith("{")]
json.dump(rows, open(out, "w"), indent=1)
cpu = "?"
try:
    for l in open("/proc/cpuinfo"):
        if l.startswith("model name"):
            cpu = l.split(":", 1)[1].strip(); break
except OSError:
    pass
mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
load = os.getloadavg()[0]
by = {}
for r in rows:
    if "model" in r:
        key = "strata" if r["tool"].startswith("strata") else r["backend"]
        by[(r["model"], key)] = r

def fnum(x, d=0):
    return f"{x:,.{d}f}"

def ms(s):
    if s >= 1:
        return f"{s:.2f} s"
    return f"{s*1e3:.3f} ms" if s < 0.01 else f"{s*1e3:.1f} ms"

def not_run(r):
    why = (r or {}).get("error", "not run")
    classes = sorted(set(re.findall(r"has class `(\w+)`", why)))
    return f"not run: needs {', '.join(classes)}" if classes else f"not run: {why[:80]}"

def ratio(a, b):
    r = a / b
    return f"{r:.2f}x" if r < 10 else f"{r:.0f}x"

names = {"mlp": "MLP 784-256-256-10", "cnn": "small CNN 28x28x1", "mobilenetv2": "MobileNetV2 96x96 (alpha 1)"}
lines = []
A = lines.append
A("## Engine: running models (`predict`)")
A("")
A(f"Command: `bench/engine.sh {repeats}` (raw results: `bench/runs/<date>-<host>/engine.json`; the Rust side is")
A("`crates/layers/examples/bench_engine.rs`, the Keras side `tools/oracle/bench_keras.py`).")
A("")
strata_thr = next((r["threads"] for r in rows if r.get("tool", "").startswith("strata") and "threads" in r), "?")
tf_thr = next((r["threads"] for (m, k), r in by.items() if k == "tensorflow"), "?")
jx_thr = next((r["threads"] for (m, k), r in by.items() if k == "jax"), "?")
A(f"Machine: {os.cpu_count()} cores ({cpu}), {mem:.0f} GiB, Linux {platform.release()}; load average "
  f"{load:.1f} when the table was written (other jobs shared the cores, which slows both sides).")
A(f"Threads: strata {strata_thr} (its rayon pool); Keras/TensorFlow: {tf_thr}; Keras/JAX: {jx_thr}.")
A(f"Medians of {repeats} rounds, each round repeating the call for at least 0.2 s (latency) or 0.3 s (batch).")
A("")
A("The models are built by Keras 3.15.1 with fixed seeds (random weights) and saved as `.keras`; strata")
A("and both Keras backends load the same files. Before timing, each side's batch outputs are compared")
A("with what Keras (TensorFlow) computed: the max abs diff column.")
A("")
A("**(a) One-sample latency**: strata `Model::predict` on a batch of 1 vs Keras's eager `model(x)`.")
A("Ratio: Keras time over strata time (above 1: strata is faster; the target is 20x).")
A("")
A("| model | strata | Keras (TF) | Keras (JAX) | vs TF | vs JAX |")
A("|---|---|---|---|---|---|")
for m in names:
    s, t, j = by.get((m, "strata")), by.get((m, "tensorflow")), by.get((m, "jax"))
    if not (t and j):
        continue
    if s is None or "error" in s:
        A(f"| {names[m]} | {not_run(s)} | {ms(t['latency_s'])} | {ms(j['latency_s'])} | - | - |")
        continue
    A(f"| {names[m]} | {ms(s['latency_s'])} | {ms(t['latency_s'])} | {ms(j['latency_s'])} | "
      f"{ratio(t['latency_s'], s['latency_s'])} | {ratio(j['latency_s'], s['latency_s'])} |")
A("")
A("**(b) Batch-128 throughput** (samples/s): strata `Model::predict` vs Keras `predict_on_batch`")
A("(Keras compiles the predict step: `tf.function` / `jax.jit`). Ratio: strata over Keras (the target")
A("is at least 1 against the faster backend).")
A("")
A("| model | strata | Keras (TF) | Keras (JAX) | vs TF | vs JAX | max abs diff strata / JAX |")
A("|---|---|---|---|---|---|---|")
for m in names:
    s, t, j = by.get((m, "strata")), by.get((m, "tensorflow")), by.get((m, "jax"))
    if not (t and j):
        continue
    if s is None or "error" in s:
        A(f"| {names[m]} | {not_run(s)} | {fnum(t['samples_per_s'])} | "
          f"{fnum(j['samples_per_s'])} | - | - | - / {j['max_abs_diff_vs_tf']:.1e} |")
        continue
    A(f"| {names[m]} | {fnum(s['samples_per_s'])} | {fnum(t['samples_per_s'])} | {fnum(j['samples_per_s'])} | "
      f"{ratio(s['samples_per_s'], t['samples_per_s'])} | {ratio(s['samples_per_s'], j['samples_per_s'])} | "
      f"{s['max_abs_diff']:.1e} / {j['max_abs_diff_vs_tf']:.1e} |")
A("")
A("**(c) End to end**: `strata predict MODEL --inputs X.npz --output Y.npz` vs")
A("`python -c \"import numpy, keras; load_model; predict; np.savez\"` (process wall time, best of "
  f"{repeats}, batch 128).")
A("")
A("| model | strata predict | python (TF) | python (JAX) | vs TF | vs JAX |")
A("|---|---|---|---|---|---|")
cli = {}
for r in rows:
    if "cli" in r:
        cli.setdefault(r["cli"], {})[r["backend"]] = r
def num(v):
    try:
        return float(v)
    except ValueError:
        return None
for m, d in cli.items():
    t, j = d.get("tensorflow"), d.get("jax")
    if not (t and j):
        continue
    s = num(t["strata_s"])
    tt, jj = num(t["python_s"]), num(j["python_s"])
    cell = lambda v, raw: ms(v) if v is not None else raw
    if s is None:
        miss = "not run: this build has no `strata predict`" if "no predict" in t["strata_s"] else t["strata_s"]
        A(f"| {names.get(m, m)} | {miss} | {cell(tt, t['python_s'])} | {cell(jj, j['python_s'])} | - | - |")
    else:
        A(f"| {names.get(m, m)} | {ms(s)} | {cell(tt, t['python_s'])} | {cell(jj, j['python_s'])} | "
          f"{ratio(tt, s) if tt else '-'} | {ratio(jj, s) if jj else '-'} |")
A("")
section = "\n".join(lines) + "\n"
BEGIN, END = "<!-- engine:begin (bench/engine.sh rewrites this section) -->", "<!-- engine:end -->"
text = open(md).read()
block = BEGIN + "\n" + section + END
if BEGIN in text and END in text:
    pre, rest = text.split(BEGIN, 1)
    post = rest.split(END, 1)[1]
    text = pre + block + post
else:
    text = text.rstrip("\n") + "\n\n" + block + "\n"
open(md, "w").write(text)
print(section)
PY
echo "wrote $JSON_OUT and the engine section of BENCHMARKS.md"
