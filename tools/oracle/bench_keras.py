"""Keras side of bench/engine.sh (not used by the test suite).

    bench_keras.py gen DIR              # builds the benchmark models (fixed seeds), saves
                                        # DIR/<name>/model.keras + io.npz (in_0 / out_0: batch-128
                                        # inputs and what Keras computed from them)
    KERAS_BACKEND=jax bench_keras.py time DIR REPEATS
                                        # loads each DIR/<name>/model.keras with the backend in
                                        # KERAS_BACKEND, checks its outputs against io.npz, then times
                                        # one-sample latency (eager `model(x)`) and batch-128
                                        # throughput (`predict_on_batch`, a compiled predict step);
                                        # one JSON object per model on stdout

The same files are loaded by strata (crates/layers/examples/bench_engine.rs), so both sides run the
same weights on the same inputs.
"""

import json
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

BATCH = 128
MODELS = ("mlp", "cnn", "mobilenetv2")


def build(name):
    import keras
    from keras import layers as L

    keras.utils.set_random_seed(0)
    if name == "mlp":
        return keras.Sequential(
            [keras.Input((784,)), L.Dense(256, activation="relu"), L.Dense(256, activation="relu"),
             L.Dense(10, activation="softmax")],
            name="bench_mlp",
        ), (784,)
    if name == "cnn":
        return keras.Sequential(
            [keras.Input((28, 28, 1)), L.Conv2D(32, 3, activation="relu"), L.MaxPooling2D(2),
             L.Conv2D(64, 3, activation="relu"), L.MaxPooling2D(2), L.Flatten(), L.Dense(10, activation="softmax")],
            name="bench_cnn",
        ), (28, 28, 1)
    if name == "mobilenetv2":
        m = keras.applications.MobileNetV2(input_shape=(96, 96, 3), alpha=1.0, weights=None, classes=10)
        return m, (96, 96, 3)
    raise SystemExit(f"unknown model {name}")


def gen(out):
    import numpy as np

    for name in MODELS:
        model, shape = build(name)
        rng = np.random.default_rng(1)
        x = rng.standard_normal((BATCH,) + shape).astype("float32")
        if name == "mobilenetv2":
            x = rng.uniform(-1.0, 1.0, (BATCH,) + shape).astype("float32")
        y = np.asarray(model.predict_on_batch(x), dtype="float32")
        d = os.path.join(out, name)
        os.makedirs(d, exist_ok=True)
        model.save(os.path.join(d, "model.keras"))
        np.savez(os.path.join(d, "io.npz"), in_0=x, out_0=y)
        print(f"{name}: {model.count_params()} parameters -> {d}", file=sys.stderr)


def timed(fn, repeats, min_seconds):
    """Median and best seconds per call over `repeats` rounds, each at least `min_seconds` long."""
    fn()
    fn()
    per = []
    for _ in range(repeats):
        n, t0 = 0, time.perf_counter()
        while True:
            fn()
            n += 1
            el = time.perf_counter() - t0
            if el >= min_seconds:
                break
        per.append(el / n)
    return statistics.median(per), min(per)


def threads(backend):
    if backend == "tensorflow":
        import tensorflow as tf

        intra = tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count()
        return f"TF intra-op {intra} (0 = all {os.cpu_count()} cores)"
    if backend == "jax":
        return f"XLA CPU, {os.cpu_count()} cores"
    return "?"


def time_models(root, repeats):
    import numpy as np
    import keras

    backend = keras.backend.backend()
    for name in MODELS:
        d = os.path.join(root, name)
        if not os.path.exists(os.path.join(d, "model.keras")):
            continue
        io = np.load(os.path.join(d, "io.npz"))
        x, want = io["in_0"], io["out_0"]
        model = keras.models.load_model(os.path.join(d, "model.keras"), compile=False)
        got = np.asarray(model.predict_on_batch(x))
        diff = float(np.max(np.abs(got - want)))
        x1 = x[:1]
        x1t = keras.ops.convert_to_tensor(x1)

        def eager():
            y = model(x1t, training=False)
            keras.ops.convert_to_numpy(y)

        lat_med, lat_best = timed(eager, repeats, 0.2)

        def batch():
            model.predict_on_batch(x)

        thr_med, thr_best = timed(batch, repeats, 0.3)
        row = dict(
            model=name,
            tool=f"keras {keras.__version__} ({backend})",
            backend=backend,
            max_abs_diff_vs_tf=diff,
            latency_s=lat_med,
            latency_best_s=lat_best,
            batch=BATCH,
            batch_s=thr_med,
            batch_best_s=thr_best,
            samples_per_s=BATCH / thr_med,
            threads=threads(backend),
        )
        print(json.dumps(row), flush=True)


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "gen":
        gen(sys.argv[2])
    elif len(sys.argv) >= 3 and sys.argv[1] == "time":
        time_models(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 5)
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
