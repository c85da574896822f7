"""Keras 3 oracle for strata's trainer: whole `fit` runs of small models under every optimizer
(the `bn` model, with a trainable BatchNormalization, under a few).

Writes fixtures/train/fit/:
  index.json                 every case: optimizer (keras.optimizers.serialize), loss, metrics, fit
                             arguments, history, evaluate, optimizer variable paths, array keys
  <model>.npz                x, y, init_<i> (initial weights, Keras order), grads/..., <case>/...
  <model>/model.keras        the model, uncompiled (every case compiles it its own way)
  <model>/initial.weights.h5 the initial weights every case starts from

Every expected number comes from Keras 3.15.1 (TF backend), float32.

    ~/.cache/strata/oracle/venv/bin/python tools/oracle/gen_fit.py [--model seed|cnn|bn ...]
"""

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_DETERMINISTIC_OPS", "1")
os.environ.pop("TF_USE_LEGACY_KERAS", None)

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402
from keras import ops  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "fixtures", "train", "fit")
EPOCHS = 2
BATCH = 32


def f32(a):
    return np.asarray(a, dtype=np.float32)


def jsonable(x):
    return json.loads(json.dumps(x, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))


# The reference example's custom objects. Defined here (not imported from oracle_common, whose
# custom_loss is 0.5 * MSE): this custom_loss is exactly the mean squared error.
@keras.saving.register_keras_serializable(package="my_custom_layers")
class CustomDense(keras.layers.Layer):
    def __init__(self, units=32, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        input_dim = int(input_shape[-1])
        self.w = self.add_weight(name="w", shape=(input_dim, self.units), initializer="random_normal",
                                 trainable=True)
        self.b = self.add_weight(name="b", shape=(self.units,), initializer="zeros", trainable=True)

    def call(self, x):
        return ops.matmul(x, self.w) + self.b

    def get_config(self):
        config = super().get_config()
        config.update({"units": self.units})
        return config


@keras.saving.register_keras_serializable(package="my_custom_losses")
def custom_loss(y_true, y_pred):
    return ops.mean(ops.square(y_true - y_pred), axis=-1)


# ---------------------------------------------------------------- models and data

def seed_model():
    return keras.Sequential([keras.Input((10,)), CustomDense(32, name="custom_dense"),
                             keras.layers.Dense(1, name="dense")], name="seed")


def cnn_model():
    return keras.Sequential([
        keras.Input((12, 12, 1)),
        keras.layers.Conv2D(4, 3, activation="relu", name="conv2d"),
        keras.layers.MaxPooling2D(2, name="max_pooling2d"),
        keras.layers.Flatten(name="flatten"),
        keras.layers.Dense(3, activation="softmax", name="dense"),
    ], name="cnn")


def bn_model():
    return keras.Sequential([
        keras.Input((8,)),
        # no bias before the normalization: its gradient is zero up to rounding noise, which
        # Adam would amplify into lr-sized steps whose sign no two implementations share
        keras.layers.Dense(16, use_bias=False, name="dense"),
        keras.layers.BatchNormalization(name="batch_normalization"),
        keras.layers.Activation("relu", name="activation"),
        keras.layers.Dense(3, activation="softmax", name="dense_1"),
    ], name="bn")


def seed_data():
    rng = np.random.default_rng(42)
    return f32(rng.normal(size=(100, 10))), f32(rng.normal(size=(100, 1)))


def cnn_data():
    rng = np.random.default_rng(7)
    return f32(rng.normal(size=(64, 12, 12, 1))), rng.integers(0, 3, size=(64,)).astype(np.int32)


def bn_data():
    rng = np.random.default_rng(11)
    # shifted and scaled features, so the batch statistics are far from the initial moving ones
    x = f32(rng.normal(loc=0.5, scale=2.0, size=(64, 8)))
    return x, rng.integers(0, 3, size=(64,)).astype(np.int32)


MODELS = {
    "seed": dict(build=seed_model, data=seed_data, loss="mse", metrics=[]),
    "cnn": dict(build=cnn_model, data=cnn_data, loss="sparse_categorical_crossentropy", metrics=["accuracy"]),
    # a trainable BatchNormalization: batch statistics in training, moving-average updates;
    # a few optimizers only, to keep the fixtures small
    "bn": dict(build=bn_model, data=bn_data, loss="sparse_categorical_crossentropy", metrics=["accuracy"],
               optimizers=["sgd", "sgd_momentum_nesterov", "adam"], extra=["adam_validation_split"]),
}


def optimizer_cases():
    O = keras.optimizers
    S = keras.optimizers.schedules
    return {
        "sgd": lambda: O.SGD(learning_rate=0.05),
        "sgd_momentum_nesterov": lambda: O.SGD(learning_rate=0.02, momentum=0.9, nesterov=True),
        "adam": lambda: O.Adam(learning_rate=0.01),
        "adam_amsgrad": lambda: O.Adam(learning_rate=0.01, amsgrad=True),
        "adamw": lambda: O.AdamW(learning_rate=0.01, weight_decay=0.05),
        "rmsprop_momentum_centered": lambda: O.RMSprop(learning_rate=0.005, momentum=0.5, centered=True),
        "adagrad": lambda: O.Adagrad(learning_rate=0.05),
        "adadelta": lambda: O.Adadelta(learning_rate=1.0),
        "adamax": lambda: O.Adamax(learning_rate=0.01),
        "nadam": lambda: O.Nadam(learning_rate=0.01),
        "lion": lambda: O.Lion(learning_rate=0.002),
        "adam_clipnorm": lambda: O.Adam(learning_rate=0.01, clipnorm=0.5),
        "sgd_exp_decay": lambda: O.SGD(learning_rate=S.ExponentialDecay(0.05, decay_steps=2, decay_rate=0.5)),
    }


def extra_cases(model_name, x, y):
    """Adam runs whose fit arguments change which samples count and how much."""
    n = len(x)
    rng = np.random.default_rng(99)
    out = {"adam_validation_split": dict(fit={"validation_split": 0.2}, arrays={})}
    sw = f32(rng.uniform(0.2, 2.0, size=(n,)))
    out["adam_sample_weight"] = dict(fit={"sample_weight": sw}, arrays={"sample_weight": sw})
    if model_name == "cnn":
        out["adam_class_weight"] = dict(fit={"class_weight": {0: 1.0, 1: 2.5, 2: 0.5}}, arrays={})
    else:
        out["adam_custom_loss"] = dict(fit={}, arrays={}, loss="my_custom_losses>custom_loss")
    return out


# ---------------------------------------------------------------- one case

def fresh(spec, initial):
    model = spec["build"]()
    model.set_weights(initial)
    return model


def named(opt):
    """The optimizer renamed to its class's default name (`adam`), so its variable paths do not
    depend on how many optimizers this process made before (`adam_10/...`)."""
    return opt.__class__.from_config({**opt.get_config(), "name": opt.__class__.__name__.lower()})


def compile_model(model, opt, loss, metrics):
    loss_obj = custom_loss if loss == "my_custom_losses>custom_loss" else loss
    model.compile(optimizer=opt, loss=loss_obj, metrics=list(metrics))


def run_case(name, spec, initial, x, y, make_opt, loss, fit_kwargs, arrays, step1):
    entry = {}
    if step1:
        model = fresh(spec, initial)
        opt = named(make_opt())
        compile_model(model, opt, loss, spec["metrics"])
        logs = model.train_on_batch(x[:BATCH], y[:BATCH], return_dict=True)
        for i, v in enumerate(model.weights):
            arrays[f"{name}/step1_{i}"] = f32(v.numpy())
        entry["step1_logs"] = {k: float(v) for k, v in logs.items()}

    keras.utils.set_random_seed(1234)
    model = fresh(spec, initial)
    opt = named(make_opt())
    compile_model(model, opt, loss, spec["metrics"])
    entry["optimizer"] = jsonable(keras.optimizers.serialize(opt))
    hist = model.fit(x, y, epochs=EPOCHS, batch_size=BATCH, shuffle=False, verbose=0, **fit_kwargs)
    entry["history"] = {k: [float(v) for v in vals] for k, vals in hist.history.items()}
    for i, v in enumerate(model.weights):
        arrays[f"{name}/final_{i}"] = f32(v.numpy())
    entry["optimizer_variables"] = []
    for j, v in enumerate(model.optimizer.variables):
        arrays[f"{name}/opt_{j}"] = np.asarray(v.numpy())
        entry["optimizer_variables"].append({"path": v.path, "shape": list(v.shape), "dtype": str(v.dtype)})
    ev = model.evaluate(x, y, batch_size=BATCH, verbose=0, return_dict=True)
    entry["evaluate"] = {k: float(v) for k, v in ev.items()}
    entry["loss"] = loss
    entry["metrics"] = list(spec["metrics"])
    entry["epochs"] = EPOCHS
    entry["batch_size"] = BATCH
    entry["shuffle"] = False
    entry["fit_kwargs"] = {k: (v if k != "sample_weight" else f"{name}/sample_weight")
                           for k, v in jsonable(fit_kwargs).items()} if fit_kwargs else {}
    if "class_weight" in fit_kwargs:
        entry["fit_kwargs"]["class_weight"] = {str(k): v for k, v in fit_kwargs["class_weight"].items()}
    entry["steps_per_epoch"] = int(np.ceil(len(x) * (1 - fit_kwargs.get("validation_split", 0.0)) / BATCH))
    entry["arrays"] = sorted(k for k in arrays if k.startswith(name + "/"))
    return entry


def gen_model(model_name):
    spec = MODELS[model_name]
    x, y = spec["data"]()
    keras.utils.set_random_seed(1234)
    model = spec["build"]()
    # Non-zero biases, so a reader that drops or swaps them is caught.
    rng = np.random.default_rng(5)
    initial = [f32(v.numpy()) if np.any(v.numpy()) else f32(rng.normal(scale=0.1, size=v.shape))
               for v in model.weights]
    model.set_weights(initial)
    d = os.path.join(OUT, model_name)
    os.makedirs(d, exist_ok=True)
    model.save(os.path.join(d, "model.keras"))
    model.save_weights(os.path.join(d, "initial.weights.h5"))

    arrays = {"x": x, "y": y}
    for i, w in enumerate(initial):
        arrays[f"init_{i}"] = w
    info = {
        "x_shape": list(x.shape), "y_shape": list(y.shape), "y_dtype": str(y.dtype),
        "weights": [{"path": v.path, "shape": list(v.shape), "trainable": bool(v.trainable)} for v in model.weights],
        "loss": spec["loss"], "metrics": spec["metrics"],
    }

    # Keras's gradient of the compiled loss at the initial weights, first batch.
    gm = fresh(spec, initial)
    compile_model(gm, keras.optimizers.SGD(), spec["loss"], spec["metrics"])
    xb, yb = tf.constant(x[:BATCH]), tf.constant(y[:BATCH])
    with tf.GradientTape() as tape:
        pred = gm(xb, training=True)
        loss = gm.compute_loss(x=xb, y=yb, y_pred=pred)
    grads = tape.gradient(loss, gm.trainable_variables)
    arrays["grads/loss"] = f32(loss.numpy()).reshape(())
    for i, g in enumerate(grads):
        arrays[f"grads/{i}"] = f32(g.numpy())
    info["grads"] = {"batch": [0, BATCH], "loss": spec["loss"], "value": "grads/loss",
                     "trainable_variables": [v.path for v in gm.trainable_variables],
                     "arrays": [f"grads/{i}" for i in range(len(grads))]}

    cases = {}
    for name, make in optimizer_cases().items():
        if "optimizers" in spec and name not in spec["optimizers"]:
            continue
        cases[name] = run_case(name, spec, initial, x, y, make, spec["loss"], {}, arrays, step1=True)
        print(f"{model_name}/{name}: {cases[name]['history']}", file=sys.stderr)
    for name, ex in extra_cases(model_name, x, y).items():
        if "extra" in spec and name not in spec["extra"]:
            continue
        arrays.update({f"{name}/{k}": v for k, v in ex["arrays"].items()})
        loss = ex.get("loss", spec["loss"])
        cases[name] = run_case(name, spec, initial, x, y, lambda: keras.optimizers.Adam(learning_rate=0.01), loss,
                               ex["fit"], arrays, step1=False)
        print(f"{model_name}/{name}: {cases[name]['history']}", file=sys.stderr)
    info["cases"] = cases
    np.savez_compressed(os.path.join(OUT, f"{model_name}.npz"), **arrays)
    return info


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", action="append", choices=sorted(MODELS))
    args = ap.parse_args()
    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.experimental.enable_op_determinism()
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, "index.json")
    index = json.load(open(path)) if os.path.exists(path) else {}
    index["keras_version"] = keras.__version__
    index["backend"] = keras.backend.backend()
    index.setdefault("models", {})
    for m in args.model or list(MODELS):
        index["models"][m] = gen_model(m)
    with open(path, "w") as f:
        json.dump(index, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
