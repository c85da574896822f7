"""Keras side of bench/train.sh (not used by the test suite).

    bench_fit.py gen DIR                      # the seed model (Input(10) -> CustomDense(32) -> Dense(1),
                                              # uncompiled) and the training data of every benchmark,
                                              # as DIR/fit/*.npy; the MLP and CNN models come from
                                              # bench_keras.py gen (DIR/mlp, DIR/cnn)
    KERAS_BACKEND=jax bench_fit.py time DIR REPEATS
                                              # one JSON object per benchmark on stdout

Benchmarks (each side loads the same .keras files and trains on the same arrays):
  seed  compile(adam, mse); fit(epochs=2, batch_size=32) on 100 samples; seconds per warm fit call
        (the first call, which traces the train step, is not timed)
  mlp   MLP 784-256-256-10, compile(adam, sparse_categorical_crossentropy); one epoch of 12800
        samples at batch 128 after a warm-up epoch; samples/s
  cnn   the small CNN on 28x28x1 (Conv32-Pool-Conv64-Pool-Dense10), same loss; one epoch of 2560
        samples at batch 128 after a warm-up epoch; samples/s
"""

import json
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

SIZES = {"mlp": (12800, (784,)), "cnn": (2560, (28, 28, 1))}


def custom_dense():
    import keras
    from keras import ops

    @keras.saving.register_keras_serializable(package="my_custom_layers")
    class CustomDense(keras.layers.Layer):
        def __init__(self, units=32, **kwargs):
            super().__init__(**kwargs)
            self.units = units

        def build(self, input_shape):
            self.w = self.add_weight(name="w", shape=(input_shape[-1], self.units), initializer="random_normal")
            self.b = self.add_weight(name="b", shape=(self.units,), initializer="zeros")

        def call(self, inputs):
            return ops.matmul(inputs, self.w) + self.b

        def get_config(self):
            return {**super().get_config(), "units": self.units}

    return CustomDense


def gen(root):
    import numpy as np
    import keras

    out = os.path.join(root, "fit")
    os.makedirs(out, exist_ok=True)
    keras.utils.set_random_seed(0)
    cd = custom_dense()
    model = keras.Sequential([keras.Input((10,)), cd(32), keras.layers.Dense(1)], name="seed")
    model.save(os.path.join(out, "seed.keras"))
    rng = np.random.default_rng(0)
    np.save(os.path.join(out, "seed_x.npy"), rng.standard_normal((100, 10)).astype("float32"))
    np.save(os.path.join(out, "seed_y.npy"), rng.standard_normal((100, 1)).astype("float32"))
    for name, (n, shape) in SIZES.items():
        np.save(os.path.join(out, f"{name}_x.npy"), rng.standard_normal((n,) + shape).astype("float32"))
        np.save(os.path.join(out, f"{name}_y.npy"), rng.integers(0, 10, n).astype("float32"))
    print(f"training data -> {out}", file=sys.stderr)


def time_all(root, repeats):
    import numpy as np
    import keras

    custom_dense()
    backend = keras.backend.backend()
    tool = f"keras {keras.__version__} ({backend})"
    fit_dir = os.path.join(root, "fit")
    x, y = np.load(os.path.join(fit_dir, "seed_x.npy")), np.load(os.path.join(fit_dir, "seed_y.npy"))
    model = keras.models.load_model(os.path.join(fit_dir, "seed.keras"))
    model.compile(optimizer="adam", loss="mse")
    model.fit(x, y, epochs=2, batch_size=32, verbose=0)
    per = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        model.fit(x, y, epochs=2, batch_size=32, verbose=0)
        per.append(time.perf_counter() - t0)
    print(json.dumps(dict(bench="seed", tool=tool, backend=backend, seconds=statistics.median(per), best_seconds=min(per))), flush=True)
    for name, (n, _) in SIZES.items():
        x = np.load(os.path.join(fit_dir, f"{name}_x.npy"))
        y = np.load(os.path.join(fit_dir, f"{name}_y.npy")).astype("int32")
        model = keras.models.load_model(os.path.join(root, name, "model.keras"), compile=False)
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        model.fit(x, y, epochs=1, batch_size=128, verbose=0, shuffle=False)
        per = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            model.fit(x, y, epochs=1, batch_size=128, verbose=0, shuffle=False)
            per.append(time.perf_counter() - t0)
        med = statistics.median(per)
        print(json.dumps(dict(bench=name, tool=tool, backend=backend, seconds=med, samples_per_s=n / med, best_samples_per_s=n / min(per))), flush=True)


def main():
    cmd = sys.argv[1]
    if cmd == "gen":
        gen(sys.argv[2])
    elif cmd == "time":
        time_all(sys.argv[2], int(sys.argv[3]))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
